"""riskgate: pre-trade portfolio-margin risk service for crypto derivatives."""

__version__ = "0.1.0"

"""Naive, independent reference implementations used by the tests (never by riskgate)."""

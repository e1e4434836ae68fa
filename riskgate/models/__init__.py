"""Scenario models (deribit, span, tims) and rules-based margin."""

from riskgate.models.base import ModelParamsError, ScenarioModel, load_model, model_names

__all__ = ["ModelParamsError", "ScenarioModel", "load_model", "model_names"]

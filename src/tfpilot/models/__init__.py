"""The model zoo: a registry of builders that take raw inputs (preprocessing inside)."""

from tfpilot.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["MODELS", "create_model", "list_models", "register_model"]

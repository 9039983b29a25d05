"""Networks shared by every stage, behind a ``create_model(name, **kw)`` registry."""

from edgegan.models import mobile, photo2cartoon, ugatit  # noqa: F401  (registers the models)
from edgegan.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]

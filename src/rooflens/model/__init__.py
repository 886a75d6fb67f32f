"""Model architectures: ModelSpec, the family parsers and the bundled catalog."""

from .catalog import catalog_names, list_models, load_model
from .families import FAMILIES, spec_from_config
from .spec import ModelSpec, ParamBreakdown

__all__ = [
    "FAMILIES",
    "ModelSpec",
    "ParamBreakdown",
    "catalog_names",
    "list_models",
    "load_model",
    "spec_from_config",
]

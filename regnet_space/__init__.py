"""regnet-space: a design-space explorer for the RegNet family of networks."""

from .builder import AnyNet, build_model, complexity
from .complexity import Complexity
from .errors import UserError
from .regnet import RegNetParams, make_compatible
from .resolve import resolve_model
from .spec import AnyNetSpec, HeadSpec, StageSpec, StemSpec

__all__ = [
    "AnyNet", "AnyNetSpec", "Complexity", "HeadSpec", "RegNetParams", "StageSpec", "StemSpec", "UserError",
    "build_model", "complexity", "make_compatible", "resolve_model",
]
__version__ = "0.1.0"

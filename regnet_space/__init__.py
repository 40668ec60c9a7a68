"""regnet-space: a design-space explorer for the RegNet family of networks.

``AnyNet`` and ``build_model`` need PyTorch and are imported on first use, so that what builds no model
(sampling, analysis, the commands that do only that) starts without importing torch.
"""

from .complexity import Complexity
from .counts import complexity
from .errors import UserError
from .regnet import RegNetParams, make_compatible
from .resolve import resolve_model
from .spec import AnyNetSpec, HeadSpec, StageSpec, StemSpec

__all__ = [
    "AnyNet", "AnyNetSpec", "Complexity", "HeadSpec", "RegNetParams", "StageSpec", "StemSpec", "UserError",
    "build_model", "complexity", "make_compatible", "resolve_model",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("AnyNet", "build_model"):
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""regnet-space: a design-space explorer for the RegNet family of networks.

The package is the pipeline, one layer per subpackage, each importing only the layers before it:
models -> spaces -> proxy -> study -> analysis -> design -> commands (see the README's "Layout").
``AnyNet`` and ``build_model`` need PyTorch and are imported on first use, so that what builds no model
(sampling, analysis, the commands that do only that) starts without importing torch.
"""

from .threads import passive_waiting

passive_waiting()  # before anything imports torch: OpenMP reads it once, when torch loads it (threads.py)

from .errors import UserError  # noqa: E402
from .models import (AnyNetSpec, Complexity, HeadSpec, RegNetParams, StageSpec, StemSpec, complexity,  # noqa: E402
                     make_compatible, resolve_model)

__all__ = [
    "AnyNet", "AnyNetSpec", "Complexity", "HeadSpec", "RegNetParams", "StageSpec", "StemSpec", "UserError",
    "build_model", "complexity", "make_compatible", "resolve_model",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("AnyNet", "build_model"):
        from .models import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

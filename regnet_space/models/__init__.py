"""Layer 1, models: what describes, builds, counts, names, scales and exports one network.

An ``AnyNetSpec`` (spec.py) is the one source of truth; builder.py/blocks.py turn it into a torch module and
complexity.py counts it analytically (counter.py is the per-layer tally it walks). Imports nothing of the other
layers, only ``errors`` and ``userfiles``; torch is imported by builder.py and blocks.py alone, on first use.
"""

from .complexity import complexity
from .counter import Complexity
from .regnet import RegNetParams, make_compatible
from .resolve import resolve_model
from .spec import AnyNetSpec, HeadSpec, StageSpec, StemSpec

__all__ = ["AnyNet", "AnyNetSpec", "Complexity", "HeadSpec", "RegNetParams", "StageSpec", "StemSpec",
           "build_model", "complexity", "make_compatible", "resolve_model"]


def __getattr__(name: str):
    if name in ("AnyNet", "build_model"):
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Layer 3, proxy: what trains and times one network on data (datasets, the proxy schedule, the trainer, latency).

May import ``models`` and ``spaces`` (below it), never ``study`` or anything above. ``config.py`` and
``data_options.py`` validate settings without torch, so a study spec loads without importing it; the rest is
imported on first use.
"""

from .config import ProxyConfig

__all__ = ["ProxyConfig", "TrainResult", "load_dataset", "measure_latency", "train_model"]
_LAZY = {"TrainResult": "train", "train_model": "train", "load_dataset": "data", "measure_latency": "latency"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

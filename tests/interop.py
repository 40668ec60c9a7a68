"""Build an exported network with the real library it was exported for (timm, pycls) and give it our weights.

The libraries come from the ``[interop]`` extra; without them the tests that need them skip with the reason.
timm imports torchvision at import time for two things a RegNet never uses (``FrozenBatchNorm2d`` and the data
transforms), and torchvision from the registry is a CUDA build that does not load beside the CPU torch; where it
does not import, a placeholder package stands in for it while timm is imported, and any use of it fails loudly.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path

import pytest

INTEROP_HINT = ("pip install --no-deps timm pycls && pip install yacs simplejson safetensors "
                "(the [interop] extra without its torchvision/opencv requirements)")


class _Unavailable(type):
    """A torchvision name timm refers to at import time; using it raises instead of doing something else."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable(name, (), {})

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f"torchvision is not installed: {cls.__name__} is a placeholder (tests/interop.py)")


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Unavailable(name, (), {})


class _TorchvisionPlaceholder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return _PlaceholderModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # a CUDA build beside the CPU torch fails with OSError/RuntimeError, not only ImportError
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        return False
    return True


def timm_regnet():
    """``(RegNet, RegNetCfg)`` from timm, or skip."""
    try:
        import timm  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name == "timm":
            pytest.skip(f"timm is not installed: {INTEROP_HINT}")
        _import_timm_without_torchvision(exc)
    except Exception as exc:  # a CUDA torchvision beside the CPU torch fails with OSError/RuntimeError
        _import_timm_without_torchvision(exc)
    from timm.models.regnet import RegNet, RegNetCfg

    return RegNet, RegNetCfg


def _import_timm_without_torchvision(failure: BaseException) -> None:
    if _torchvision_imports():
        raise failure
    for name in [n for n in sys.modules if n == "timm" or n.startswith("timm.")]:
        del sys.modules[name]
    finder = _TorchvisionPlaceholder()
    sys.meta_path.insert(0, finder)
    try:
        import timm  # noqa: F401
    finally:
        sys.meta_path.remove(finder)


def pycls_build(yaml_path: Path):
    """The pycls model a config yaml describes and pycls's own complexity of it, ``(model, {flops, params,
    acts})``, or skip. pycls keeps one global config, so it is reset before each load."""
    try:
        import pycls.core.builders as builders
        import pycls.core.net as pycls_net
        from pycls.core.config import cfg, reset_cfg
    except ModuleNotFoundError as exc:
        pytest.skip(f"pycls is not installed ({exc.name} missing): {INTEROP_HINT}")
    reset_cfg()
    cfg.merge_from_file(str(yaml_path))
    model = builders.build_model()
    return model, pycls_net.complexity(model)


def pycls_scaler():
    """``(scale_model, cfg, reset_cfg)`` from pycls's own ``pycls/models/scaler.py``, or skip. The scaler is in
    pycls's GitHub HEAD (2021, "Fast and Accurate Model Scaling"), not in its PyPI release 0.1.1."""
    try:
        from pycls.core.config import cfg, reset_cfg
    except ModuleNotFoundError as exc:
        pytest.skip(f"pycls is not installed ({exc.name} missing): {INTEROP_HINT}")
    try:
        from pycls.models.scaler import scale_model
    except ModuleNotFoundError as exc:
        pytest.skip(f"pycls's scaler is not importable ({exc.name} missing): pycls/models/scaler.py is in pycls's "
                    f"GitHub HEAD, not in the PyPI release 0.1.1 "
                    f"(pip install --no-deps git+https://github.com/facebookresearch/pycls)")
    return scale_model, cfg, reset_cfg


def block_key(key: str) -> str:
    """``stages.0.3.`` for a key of our block, the stem/head prefix otherwise."""
    parts = key.split(".")
    return ".".join(parts[:3]) if parts[0] == "stages" else parts[0]


def load_our_weights(ours, theirs, *, shortcut_last: bool = False) -> int:
    """Copy our model's state into theirs, tensor by tensor in registration order (both libraries register a
    block's layers in the order they run; timm registers a block's shortcut after its body, pycls and we before
    it: ``shortcut_last`` moves ours). Shapes must agree one by one, so a different network cannot pass.
    Returns the number of tensors copied."""
    state = list(ours.state_dict().items())
    if shortcut_last:
        grouped: dict[str, list] = {}
        for key, value in state:
            grouped.setdefault(block_key(key), []).append((key, value))
        state = [kv for group in grouped.values() for kv in sorted(group, key=lambda kv: "shortcut" in kv[0])]
    target = list(theirs.state_dict().items())
    assert len(state) == len(target), (len(state), len(target))
    new_state = {}
    for (key, value), (their_key, their_value) in zip(state, target):
        assert value.shape == their_value.shape, (key, tuple(value.shape), their_key, tuple(their_value.shape))
        new_state[their_key] = value
    theirs.load_state_dict(new_state)
    return len(new_state)

"""Layer 7, commands: one module per CLI command; may import every layer. Each has ``register(subparsers)``,
which adds its parser and sets ``handler``.

Handlers import the heavy libraries themselves so ``regnet-space --help`` stays fast.
"""

from __future__ import annotations

import argparse

COMMANDS = ("describe", "study", "edf", "best", "refine", "importances", "design", "power", "report", "train", "models",
            "profile", "sample", "spaces", "scale", "export")


def add_model_arguments(parser: argparse.ArgumentParser, *, data_flags: bool = True) -> None:
    """The three forms a model can be given in, shared by every command that takes one."""
    parser.add_argument("model", nargs="?", help="a catalog name (see `regnet-space models`) or a JSON file "
                        "holding an AnyNet spec, a RegNet config or a best.json")
    parser.add_argument("--regnet", metavar="K=V,...", help="RegNet parameters, e.g. "
                        "depth=13,w0=24,wa=36.44,wm=2.49,group_width=8[,bottleneck_ratio=1][,se_ratio=0.25]")
    if data_flags:
        parser.add_argument("--resolution", type=positive_int, help="input resolution (default: the model's own; "
                            "224 for catalog and RegNet models)")
        parser.add_argument("--in-channels", type=positive_int, help="input channels (default: the model's own; 3)")
        parser.add_argument("--num-classes", type=positive_int, help="classes (default: the model's own; 1000)")


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def seed_int(text: str) -> int:
    """A seed: NumPy's generators take only integers >= 0 (-1 ended in a traceback)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a power, a level, a KS distance)."""
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 1)")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def space_definition(study: str, label: str, definition: str | None):
    """The design space the models labelled ``label`` were drawn from: ``definition`` when given (a built-in
    name, a TOML space or a pycls sweep_cfg.yaml), else the study spec's space for the label (a ``.toml``
    study), else the ``sweep_cfg.yaml`` that pycls's sweep setup writes beside ``label/sweep.json``, else the
    built-in space of that name."""
    from pathlib import Path

    from ..spaces import load_space

    if definition is None and study.endswith(".toml"):
        from ..study import load_study_spec

        definition = load_study_spec(study).entry(label).space
    if definition is None:
        sweeps = [Path(p) for p in study.split(",") if Path(p).name == "sweep.json" and Path(p).parent.name == label]
        configs = [p.parent / "sweep_cfg.yaml" for p in sweeps if (p.parent / "sweep_cfg.yaml").is_file()]
        definition = str(configs[0]) if configs else None
    return load_space(definition or label)

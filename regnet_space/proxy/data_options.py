"""What a dataset name and its options may be, checked without loading data (or importing torch), so a study
spec is validated in full when it is loaded, by every command, in milliseconds."""

from __future__ import annotations

import math

from ..errors import UserError

DATASET_KINDS = ("fashion-mnist", "cifar10", "folder", "synthetic")
SYNTHETIC_DEFAULTS = {"train": 512, "test": 256, "res": 8, "channels": 1, "classes": 4, "noise": 1.0}
# The [dataset] table of a study spec: load_dataset's arguments but the device, which each worker chooses.
DATASET_OPTIONS = {"name": str, "data_dir": str, "val_size": int, "seed": int, "augment": bool}
_KIND_WORDS = {str: "a string", int: "an integer", bool: "true or false"}


def check_dataset_options(options: dict, where: str = "dataset") -> None:
    """Validate a study's ``[dataset]`` table without loading anything, naming the key at fault."""
    for key, value in options.items():
        kind = DATASET_OPTIONS.get(key)
        if kind is None:
            raise UserError(f"{where}.{key}: unknown key (known: {', '.join(DATASET_OPTIONS)})")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{where}.{key}: must be {_KIND_WORDS[kind]}, got {value!r}")
    if options.get("val_size", 0) < 0:
        raise UserError(f"{where}.val_size: must be >= 0, got {options['val_size']}")
    name = options.get("name", "fashion-mnist")
    kind, _, arg = name.partition(":")
    if kind not in DATASET_KINDS:
        raise UserError(f"{where}.name: unknown dataset {name!r} (expected fashion-mnist, cifar10:DIR, folder:DIR "
                        f"or synthetic[:k=v,...])")
    if kind == "synthetic":
        try:
            synthetic_options(arg)
        except UserError as exc:
            raise UserError(f"{where}.name: {exc}") from None
    elif kind in ("cifar10", "folder") and not (arg or options.get("data_dir")):
        raise UserError(f"{where}.name: {name!r} needs a directory: {kind}:DIR or data_dir")


def synthetic_options(arg: str) -> dict:
    """``train=100,res=6`` -> the synthetic dataset's options, defaults filled in; bad keys or values raise."""
    options = dict(SYNTHETIC_DEFAULTS)
    for item in filter(None, (part.strip() for part in arg.split(","))):
        key, sep, raw = item.partition("=")
        if not sep or key not in options:
            raise UserError(f"synthetic: {item!r} is not one of {', '.join(f'{k}=' for k in options)}")
        try:
            value = float(raw) if key == "noise" else int(raw)
        except ValueError:
            raise UserError(f"synthetic: {key}={raw!r} is not a number") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and key != "noise"):
            raise UserError(f"synthetic: {key} must be positive (noise: >= 0), got {raw}")
        options[key] = value
    if options["classes"] < 2 or options["train"] < 5:
        raise UserError("synthetic: needs classes >= 2 and train >= 5")
    return options

"""The results table every analysis reads: one row per trained model.

Columns: ``space``, ``error`` (validation top-1 error in %), ``flops``, ``params`` (required); ``acts``,
``mac``, ``latency`` (optional complexity axes: NDS data has no activations); the sampled parameters of the model's design space
(AnyNet: d1..d4, w1..w4, b1..b4, g1..g4; RegNet: depth, w0, wa, wm, group_width, bottleneck_ratio, se_ratio);
optionally ``spec`` (the AnyNetSpec as JSON) and ``status``/``diverged``.
A table comes from a results file (CSV, Parquet, JSON lines), from populations published by others (a pycls
sweep's ``sweep.json``, an NDS JSON file; see ``published.py`` and docs/imports.md), or from a study (its spec
``.toml``). Several results files joined by commas (``a.json,b.json``) are read as one table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import UserError
from ..regnet import quantized_block_widths
from ..spec import AnyNetSpec

REQUIRED = ("space", "error", "flops", "params")
COMPLEXITY = ("flops", "params", "acts", "mac", "latency")
ANYNET_PARAMETERS = tuple(f"{name}{i}" for name in "dwbg" for i in range(1, 5))
REGNET_PARAMETERS = ("depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio")
PARAMETERS = ANYNET_PARAMETERS + REGNET_PARAMETERS
# Names a study export (`regnet-space study export`) uses, read as the analysis's own when those are absent.
ALIASES = {"val_error": "error", "latency_ms": "latency"}

_READERS = {
    ".csv": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".jsonl": lambda path: pd.read_json(path, lines=True),
    ".ndjson": lambda path: pd.read_json(path, lines=True),
}


def load(source: str, *, dir: str | None = None, storage: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The validated table and its metadata, from a study spec (``.toml``) or a results file.

    The metadata of a study holds ``name``, ``dataset``, ``proxy``, ``seed`` and ``spec_toml``; a results
    file gives only ``name`` (the file's stem).
    """
    if source.endswith(".toml"):
        try:
            from ..study import load_study_table
        except ImportError as exc:
            raise UserError(f"{source}: reading a study needs regnet_space.study ({exc})") from None
        frame, meta = load_study_table(source, dir=dir, storage=storage)
    else:
        if dir is not None or storage is not None:
            raise UserError("--dir/--storage apply to a study spec (.toml), not to a results file")
        paths = [p for p in source.split(",") if p]
        frame = pd.concat([read_results(p) for p in paths], ignore_index=True) if len(paths) > 1 else read_results(source)
        meta = {"name": "+".join(Path(p).stem for p in paths)}
    return validate(frame, source), dict(meta)


def read_results(path: str) -> pd.DataFrame:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        from .published import read_published

        return read_published(path)
    if suffix not in _READERS:
        raise UserError(f"{path}: unknown results format {suffix or '(no suffix)'!r} "
                        f"(use one of {', '.join(sorted(_READERS))}, or .json "
                        f"from a pycls sweep or NDS)")
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    try:
        return _READERS[suffix](path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot read as {suffix[1:]} ({exc})") from None


def validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check the required columns and numbers; keep only complete models (``status``, when present)."""
    frame = frame.rename(columns={a: c for a, c in ALIASES.items() if a in frame.columns and c not in frame.columns})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{source}: missing column {missing[0]!r} (required: {', '.join(REQUIRED)})")
    if "status" in frame.columns:
        frame = frame[frame["status"].astype(str).str.lower() == "complete"]
    if frame.empty:
        raise UserError(f"{source}: no complete models")
    frame = frame.copy()  # row numbers in messages stay those of the file (0 = first data row)
    frame["space"] = frame["space"].astype(str)
    for column in [c for c in frame.columns if c in REQUIRED[1:] + COMPLEXITY + PARAMETERS]:
        values = pd.to_numeric(frame[column], errors="coerce")
        # Required columns need a number in every row; optional ones may be empty but not garbage.
        bad = (values.isna() & (frame[column].notna() | (column in REQUIRED))) | np.isinf(values)
        if bad.any():
            row = frame.index[np.flatnonzero(bad)[0]]
            raise UserError(f"{source}: row {row}: {column}={frame[column][row]!r} is not a finite number")
        frame[column] = values
    out_of_range = ~frame["error"].between(0, 100)
    if out_of_range.any():
        row = frame.index[np.flatnonzero(out_of_range)[0]]
        raise UserError(f"{source}: row {row}: error={frame['error'][row]} is not a top-1 error in % (0..100)")
    return frame.reset_index(drop=True)


def parameter_columns(frame: pd.DataFrame) -> list[str]:
    """The sampled-parameter columns present, in a fixed order (AnyNet's, then RegNet's)."""
    return [c for c in PARAMETERS if c in frame.columns and frame[c].notna().any()]


def complexity_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in COMPLEXITY if c in frame.columns and frame[c].notna().any()]


def row_spec(row: pd.Series) -> AnyNetSpec | None:
    """The model's AnyNetSpec, from its ``spec`` column when present."""
    text = row.get("spec")
    if not isinstance(text, str) or not text:
        return None
    return AnyNetSpec.from_dict(json.loads(text))


def block_widths(row: pd.Series | dict[str, Any]) -> list[int] | None:
    """The output width of every block of the model in ``row``: from its spec, d1..d4/w1..w4 or RegNet columns."""
    text = row.get("spec")
    if isinstance(text, str) and text:
        return _spec_block_widths(json.loads(text))
    if all(_present(row, f"{name}{i}") for name in "dw" for i in range(1, 5)):
        return [int(row[f"w{i}"]) for i in range(1, 5) for _ in range(int(row[f"d{i}"]))]
    if all(_present(row, name) for name in ("depth", "w0", "wa", "wm")):
        return quantized_block_widths(int(row["depth"]), float(row["w0"]), float(row["wa"]), float(row["wm"]))
    return None


def frame_block_widths(frame: pd.DataFrame) -> list[list[int] | None]:
    """``block_widths`` of every row of ``frame``, read from plain dicts (pandas builds a Series per row in
    ``iterrows``, which cost more than the widths at 10,000 rows)."""
    return [block_widths(row) for row in frame.to_dict("records")]


def _spec_block_widths(data: Any) -> list[int]:
    """A spec's block widths read from its stages' positive integer depths and widths, which is all they need; a
    report reads thousands, and building (validating) each AnyNetSpec took most of the time. Anything else goes
    through AnyNetSpec, which names what is wrong."""
    stages = data.get("stages") if isinstance(data, dict) else None
    if isinstance(stages, list) and stages and all(
            isinstance(s, dict) and type(s.get("depth")) is int and type(s.get("width")) is int
            and s["depth"] > 0 and s["width"] > 0 for s in stages):
        return [s["width"] for s in stages for _ in range(s["depth"])]
    return AnyNetSpec.from_dict(data).block_widths()


def _present(row: pd.Series, name: str) -> bool:
    value = row.get(name)
    return value is not None and bool(np.isfinite(value))

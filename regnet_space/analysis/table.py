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

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from ..models.regnet import quantized_block_widths
from ..models.spec import AnyNetSpec
from ..userfiles import NESTED, loads_json

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("space", "error", "flops", "params")
COMPLEXITY = ("flops", "params", "acts", "mac", "latency")
ANYNET_PARAMETERS = tuple(f"{name}{i}" for name in "dwbg" for i in range(1, 5))
REGNET_PARAMETERS = ("depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio")
PARAMETERS = ANYNET_PARAMETERS + REGNET_PARAMETERS
NUMERIC = REQUIRED[1:] + COMPLEXITY + PARAMETERS
# Names a study export (`regnet-space study export`) uses, read as the analysis's own when those are absent.
ALIASES = {"val_error": "error", "latency_ms": "latency"}
# Cells read as missing in a CSV file: pandas' defaults, so both readers of a CSV file agree.
NA_TOKENS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})

# A table as columns: name -> numpy array, numbers as int/float/bool arrays (NaN: missing), anything else as an
# object array (None: missing). The analyses that need no DataFrame (``edf``) take this form, which CSV and JSON-lines
# files are read into without pandas: importing pandas takes half a second, more than the rest of such a command.
Columns = Mapping[str, np.ndarray]


def known_errors(errors, purpose: str) -> np.ndarray:
    """A mask of the models that have a finite error, warning (RuntimeWarning, naming ``purpose``) when some do
    not. Every statistic drops them rather than rank them: argmin and an EDF both sort NaN as a value (as the
    lowest error for one, the worst for the other), which turns a missing measurement into evidence."""
    errors = np.asarray(errors, dtype=float)
    known = np.isfinite(errors)
    if not known.all():
        warnings.warn(f"{int((~known).sum())} models have no error (NaN) and are left out of {purpose}",
                      RuntimeWarning, stacklevel=3)
    return known


def load(source: str, *, dir: str | None = None, storage: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The validated table and its metadata, from a study spec (``.toml``) or a results file.

    The metadata of a study holds ``name``, ``dataset``, ``proxy``, ``seed`` and ``spec_toml``; a results
    file gives only ``name`` (the file's stem).
    """
    import pandas as pd

    if source.endswith(".toml"):
        try:
            from ..study import load_study_table
        except ImportError as exc:
            raise UserError(f"{source}: reading a study needs regnet_space.study ({exc})") from None
        frame, meta = load_study_table(source, dir=dir, storage=storage)
    else:
        paths = _results_paths(source, dir, storage)
        frame = pd.concat([read_results(p) for p in paths], ignore_index=True) if len(paths) > 1 else read_results(source)
        meta = _results_meta(paths)
    return validate(frame, source), dict(meta)


def load_columns(source: str, *, dir: str | None = None, storage: str | None = None) -> tuple[Columns, dict[str, Any]]:
    """``load`` as columns (see ``Columns``): CSV and JSON-lines files are read without pandas, anything else
    through ``load``."""
    paths = [] if source.endswith(".toml") else _results_paths(source, dir, storage)
    if not paths or any(Path(p).suffix.lower() not in _PLAIN_READERS for p in paths):
        frame, meta = load(source, dir=dir, storage=storage)
        return to_columns(frame), meta
    return validate_columns(_concatenated([_read_plain(p) for p in paths]), source), _results_meta(paths)


def _results_paths(source: str, dir: str | None, storage: str | None) -> list[str]:
    if dir is not None or storage is not None:
        raise UserError("--dir/--storage apply to a study spec (.toml), not to a results file")
    return [p for p in source.split(",") if p]


def _results_meta(paths: list[str]) -> dict[str, Any]:
    return {"name": "+".join(Path(p).stem for p in paths)}


def read_results(path: str) -> pd.DataFrame:
    import pandas as pd

    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet,
               ".jsonl": lambda p: pd.read_json(p, lines=True), ".ndjson": lambda p: pd.read_json(p, lines=True)}
    suffix = _checked_suffix(path, readers)
    if suffix == ".json":
        from .published import read_published

        return read_published(path)
    try:
        if suffix == ".csv":
            _check_header(path)  # pandas would rename a repeated column (error, error.1) and read on
        return readers[suffix](path)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot read as {suffix[1:]} ({exc})") from None


def _check_header(path: str) -> None:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    if header:
        _refuse_repeated(header, path)


def _refuse_repeated(header: list[str], path: str) -> None:
    if len(set(header)) < len(header):
        raise UserError(f"{path}: cannot read as csv (a column name appears twice)")


def _checked_suffix(path: str, readers: Mapping[str, Any]) -> str:
    """The file's suffix, once it is a known results format (``.json``: a published population) and exists."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return suffix
    if suffix not in readers:
        raise UserError(f"{path}: unknown results format {suffix or '(no suffix)'!r} "
                        f"(use one of {', '.join(sorted(readers))}, or .json "
                        f"from a pycls sweep or NDS)")
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    return suffix


def _read_plain(path: str) -> dict[str, np.ndarray]:
    """A CSV or JSON-lines results file as columns, without pandas."""
    suffix = _checked_suffix(path, _PLAIN_READERS)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _PLAIN_READERS[suffix](handle, path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read as {suffix[1:]} ({exc})") from None


def _csv_columns(handle, path: str) -> dict[str, np.ndarray]:
    rows = csv.reader(handle)
    header = next(rows, None)
    if not header:
        raise UserError(f"{path}: cannot read as csv (no header row)")
    _refuse_repeated(header, path)
    body = []
    for row in rows:
        if len(row) != len(header):
            if not row:
                continue  # a blank line, as pandas skips it
            if len(row) > len(header):
                raise UserError(f"{path}: cannot read as csv (line {rows.line_num} has {len(row)} fields, the "
                                f"header {len(header)})")
            row.extend([""] * (len(header) - len(row)))  # a short row's last cells are missing
        body.append(row)
    cells = list(zip(*body)) if body else [()] * len(header)
    return {name: _typed_cells(column) for name, column in zip(header, cells)}


def _typed_cells(cells: Sequence[str]) -> np.ndarray:
    """One CSV column: integers (when every cell is one), else numbers (NaN for missing cells), else text (None
    for missing cells)."""
    gaps = np.fromiter(map(NA_TOKENS.__contains__, cells), bool, len(cells))
    if not gaps.any():
        for parse in (int, float):
            try:
                return np.array(list(map(parse, cells)), dtype=np.int64 if parse is int else float)
            except (ValueError, OverflowError):
                pass
        return np.array(cells, dtype=object)
    try:
        return np.array([math.nan if gap else float(cell) for cell, gap in zip(cells, gaps.tolist())], dtype=float)
    except ValueError:
        return np.array([None if gap else cell for cell, gap in zip(cells, gaps.tolist())], dtype=object)


def _jsonl_columns(handle, path: str) -> dict[str, np.ndarray]:
    records = []
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path}: cannot read as jsonl (line {line}: {exc})") from None
        except RecursionError:
            raise UserError(f"{path}: cannot read as jsonl (line {line}: {NESTED})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}: cannot read as jsonl (line {line} is not an object)")
        records.append(record)
    names = list(dict.fromkeys(name for record in records for name in record))
    return {name: _typed_values([record.get(name) for record in records]) for name in names}


def _typed_values(values: list[Any]) -> np.ndarray:
    """One JSON-lines column: integers (every value a whole number, as pandas reads them), numbers (NaN for null
    or absent) or anything else as objects."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        numbers = np.array([math.nan if v is None else v for v in values], dtype=float)
        if len(present) == len(values) and all(isinstance(v, int) or v.is_integer() for v in present):
            try:
                return np.array([int(v) for v in values], dtype=np.int64)
            except OverflowError:
                pass
        return numbers
    return np.array(values, dtype=object)


_PLAIN_READERS = {".csv": _csv_columns, ".jsonl": _jsonl_columns, ".ndjson": _jsonl_columns}


def _concatenated(tables: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Several files' columns as one table (a column one file lacks is missing in its rows)."""
    if len(tables) == 1:
        return tables[0]
    names = list(dict.fromkeys(name for table in tables for name in table))
    lengths = [len(next(iter(table.values()), [])) for table in tables]
    out = {}
    for name in names:
        parts = [table[name] if name in table else np.full(n, np.nan) for table, n in zip(tables, lengths)]
        out[name] = np.concatenate(parts if len({p.dtype.kind for p in parts}) == 1 else
                                   [p.astype(object) for p in parts])
    return out


def to_columns(frame: pd.DataFrame, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """A DataFrame (its ``names`` columns, default all) as ``Columns``."""
    out = {}
    for name in frame.columns if names is None else names:
        series = frame[name]
        gaps = series.isna().to_numpy()
        if series.dtype.kind in "biuf":  # numbers, also in pandas' nullable and Arrow types
            out[name] = (series.to_numpy(dtype=float, na_value=np.nan) if gaps.any() else
                         series.to_numpy(dtype=getattr(series.dtype, "numpy_dtype", series.dtype)))
        else:
            out[name] = np.where(gaps, None, series.to_numpy(dtype=object))
    return out


def as_columns(table: pd.DataFrame | Columns, names: list[str]) -> Columns:
    """The ``names`` columns (those present) of a DataFrame or of ``Columns``, as ``Columns``."""
    if isinstance(table, Mapping):
        return {name: table[name] for name in names if name in table}
    return to_columns(table, [name for name in names if name in table.columns])


def column_names(table: pd.DataFrame | Columns) -> list[str]:
    return list(table) if isinstance(table, Mapping) else [str(c) for c in table.columns]


def missing(values: np.ndarray) -> np.ndarray:
    """Which entries of a column are missing (NaN, None)."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.fromiter((v is None or (isinstance(v, (float, np.floating)) and v != v) for v in values), bool,
                           len(values))
    return np.zeros(len(values), bool)


def group_rows(values: np.ndarray) -> dict[str, np.ndarray]:
    """The rows of each distinct value of a column, in ascending order of the values (as pandas' ``groupby``
    sorts), named by ``str`` of the value; rows with a missing value belong to no group."""
    present = np.flatnonzero(~missing(values))
    try:
        keys, inverse = np.unique(values[present], return_inverse=True)
    except TypeError:
        raise UserError("cannot group by a column that mixes text and numbers") from None
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
    return {str(key): present[order[bounds[i]:bounds[i + 1]]] for i, key in enumerate(keys)}


def validate(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``validate_columns`` of a DataFrame."""
    import pandas as pd

    return pd.DataFrame(validate_columns(to_columns(frame), source))


def validate_columns(columns: Columns, source: str) -> dict[str, np.ndarray]:
    """Check the required columns and numbers; keep only complete models (``status``, when present). Row
    numbers in messages are those of the file (0 = first data row)."""
    renamed = {alias: name for alias, name in ALIASES.items() if alias in columns and name not in columns}
    columns = {renamed.get(name, name): values for name, values in columns.items()}
    absent = [c for c in REQUIRED if c not in columns]
    if absent:
        raise UserError(f"{source}: missing column {absent[0]!r} (required: {', '.join(REQUIRED)})")
    rows = np.arange(len(columns["space"]))
    if "status" in columns:
        complete = np.array([str(v).lower() == "complete" for v in columns["status"]], bool)
        columns, rows = {name: values[complete] for name, values in columns.items()}, rows[complete]
    if rows.size == 0:
        raise UserError(f"{source}: no complete models")
    columns["space"] = np.array([str(v) for v in columns["space"]], dtype=object)
    for name in [c for c in columns if c in NUMERIC]:
        values = columns[name]
        numbers = values if values.dtype.kind in "iuf" else _numbers(values)
        gaps = np.isnan(numbers) if numbers.dtype.kind == "f" else np.zeros(len(numbers), bool)
        # Required columns need a number in every row; optional ones may be empty but not garbage.
        bad = (gaps & (~missing(values) | (name in REQUIRED))) | np.isinf(numbers)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(f"{source}: row {rows[i]}: {name}={values[i]!r} is not a finite number")
        columns[name] = numbers
    out_of_range = ~((columns["error"] >= 0) & (columns["error"] <= 100))
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise UserError(f"{source}: row {rows[i]}: error={columns['error'][i]} is not a top-1 error in % (0..100)")
    for name, low, high, what in _RANGES:
        if name in columns:
            values = columns[name]
            bad = ~np.isnan(values) & ((values < low) | (values > high)) if values.dtype.kind == "f" else \
                (values < low) | (values > high)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise UserError(f"{source}: row {rows[i]}: {name}={values[i]} is not {what}")
    return columns


# Counts are never negative, and none comes near 1e18: ten million times the 1.3e11 flops of RegNetY-128GF, the
# largest network of the RegNet paper. Beyond that a value is a unit mistake or garbage (matplotlib cannot
# even lay out an axis to 1e308). RegNet's w0 and wa are widths (w0 > 0, wa >= 0) and wm >= 1 (its logarithm
# sets the stages; below 1 it is a math domain error).
MAX_COUNT = 1e18
_RANGES = ([(name, 0, MAX_COUNT, f"a count in [0, {MAX_COUNT:.0e}]") for name in COMPLEXITY]
           + [(name, 0, MAX_COUNT, "a non-negative number") for name in PARAMETERS if name != "wm"]
           + [("wm", 1, MAX_COUNT, "a width multiplier >= 1")])


def _numbers(values: np.ndarray) -> np.ndarray:
    """An object or bool column as floats, NaN where an entry is not a number (nor a text that reads as one)."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if isinstance(value, (int, float, np.number, np.bool_)):
            out[i] = float(value)
        elif isinstance(value, str):
            try:
                out[i] = float(value)
            except ValueError:
                pass
    return out


def parameter_columns(frame: pd.DataFrame) -> list[str]:
    """The sampled-parameter columns present, in a fixed order (AnyNet's, then RegNet's)."""
    return [c for c in PARAMETERS if c in frame.columns and frame[c].notna().any()]


def complexity_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in COMPLEXITY if c in frame.columns and frame[c].notna().any()]


def unbuildable(frame: pd.DataFrame) -> str:
    """Why the table's models carry no network, when a published file said so (``no_spec``), else ''."""
    if "no_spec" not in frame.columns:
        return ""
    reasons = frame["no_spec"].dropna()
    if reasons.empty:
        return ""
    return f"{len(reasons)} of {len(frame)} models carry no network (model {reasons.index[0]}: {reasons.iloc[0]})"


def row_spec(row: pd.Series) -> AnyNetSpec | None:
    """The model's AnyNetSpec, from its ``spec`` column when present."""
    text = row.get("spec")
    if not isinstance(text, str) or not text:
        return None
    return AnyNetSpec.from_dict(loads_json(text))


def block_widths(row: pd.Series | dict[str, Any]) -> list[int] | None:
    """The output width of every block of the model in ``row``: from its spec, d1..d4/w1..w4 or RegNet columns."""
    text = row.get("spec")
    if isinstance(text, str) and text:
        return _spec_block_widths(loads_json(text))
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

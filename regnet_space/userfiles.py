"""The files a user names: reading them (model JSON, space and study TOML, results) with errors that name the
file, and writing outputs safely.

Outputs go exactly where the user said: the folder must exist (nothing creates parent folders the user did not
name), a file is written to a temporary name beside it and renamed into place (an interrupted or failed
write never leaves half a file, nor clobbers the old one), and a device such as ``/dev/full`` is written in
place. Names that come from data (a space label in a results table) pass through ``safe_name`` before they
become part of a path.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import orjson

from .errors import UserError


def loads_json(text: str | bytes) -> Any:
    """JSON text parsed with orjson (2-3x the json module: a report parses 10,000 model specs, a status 10,000
    models' journal records), and with json where orjson refuses what json accepts (NaN and infinities, which
    Python's json writes; integers beyond 64 bits). A text neither accepts raises json's error (a ValueError)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def read_text(path: Path, what: str = "file") -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror})") from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc})") from None


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(text: str) -> str:
    """A file-name component made from data: no separators, no ``..``, no leading dot, never empty.
    ``../../x/evil`` -> ``x_evil``-like text that stays inside the folder it is joined to."""
    name = _UNSAFE.sub("_", str(text)).replace("..", "_").lstrip(".")
    return name or "_"


def check_output(path: str | Path, what: str = "output") -> Path:
    """Fail early (before any work) if ``path`` cannot be an output file: its folder must exist, and it must
    not be a folder itself."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; name a file to write the {what} to")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{path}: cannot write the {what}: no such folder {parent} (create it first)")
    return path


def write_output(path: str | Path, data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` (see the module docstring); any failure is a one-line UserError."""
    path = check_output(path, what)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):  # /dev/full, /dev/stdout, a FIFO
            with open(path, "wb") as handle:
                handle.write(payload)
            return path
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UserError(f"{path}: cannot write the {what} ({exc.strerror or exc})") from None
    return path


def make_output_dir(path: str | Path, what: str = "outputs") -> Path:
    """Create the folder the user named (its parent must exist: no folders beyond the one named)."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise UserError(f"{path}: exists and is not a folder; name a folder for the {what}")
    if not path.parent.is_dir():
        raise UserError(f"{path}: cannot create the folder for the {what}: no such folder {path.parent}")
    try:
        path.mkdir()
    except OSError as exc:
        raise UserError(f"{path}: cannot create the folder for the {what} ({exc.strerror})") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

"""The files a user names: reading them (model JSON, space and study TOML, results) with errors that name the
file, and writing outputs safely.

Every file any command writes goes through ``write_output``: missing parent folders are created (``--out
runs/x.json`` works on a fresh clone); a file is written to a temporary name beside it and renamed into place
(an interrupted or failed write never leaves half a file, nor clobbers the old one); a symbolic link to a file
is refused, never written through nor replaced (as root, a link to a system file would clobber it); a device
such as ``/dev/full`` or a FIFO with a reader is written in place, a FIFO without one is refused instead of
hanging; database passwords in a text are masked (``redaction.redact_urls``). Names that come from data (a
space label in a results table) pass through ``safe_name`` before they become part of a path.
"""

from __future__ import annotations

import errno
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


# Python's json parser recurses once per level: 200,000 '[' end in a RecursionError, not a JSONDecodeError.
NESTED = "nested too deeply"


def loads_json(text: str | bytes) -> Any:
    """JSON text parsed with orjson (2-3x the json module: a report parses 10,000 model specs, a status 10,000
    models' journal records), and with json where orjson refuses what json accepts (NaN and infinities, which
    Python's json writes; integers beyond 64 bits). A text neither accepts raises json's error (a ValueError)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except RecursionError:
            raise ValueError(NESTED) from None


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
    except RecursionError:
        raise UserError(f"{where}: not valid JSON ({NESTED})") from None


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(text: str) -> str:
    """A file-name component made from data: no separators, no ``..``, no leading dot, never empty.
    ``../../x/evil`` -> ``x_evil``-like text that stays inside the folder it is joined to."""
    name = _UNSAFE.sub("_", str(text)).replace("..", "_").lstrip(".")
    return name or "_"


def check_output(path: str | Path, what: str = "output") -> Path:
    """Fail early (before any work) if ``path`` cannot be an output file: not a folder, not a link to a file,
    and the folder it goes in exists or can be created in a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; name a file to write the {what} to")
    if _special(path):
        return path
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link; name the file itself (a link is never written through)")
    _check_creatable(path.parent, path, what)
    return path


def _check_creatable(folder: Path, path: Path, what: str) -> None:
    """``folder`` exists or can be made: its nearest existing ancestor is a writable folder."""
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{path}: cannot write the {what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write the {what}: folder {folder} is not writable")


def write_output(path: str | Path, data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` (see the module docstring); any failure is a one-line UserError."""
    from .redaction import redact_urls

    path = check_output(path, what)
    payload = redact_urls(data).encode("utf-8") if isinstance(data, str) else data
    try:
        if _special(path):
            _write_in_place(path, payload, what)
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o666 & ~_umask())
            if path.is_symlink():  # made since check_output: still never replace a link
                raise UserError(f"{path}: is a symbolic link; name the file itself (a link is never written through)")
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UserError(f"{path}: cannot write the {what} ({exc.strerror or exc})") from None
    return path


def _special(path: Path) -> bool:
    """A device, FIFO or socket (maybe through a link, as ``/dev/stdout``): written in place, never renamed over."""
    try:
        return not stat.S_ISREG(path.stat().st_mode) and not path.is_dir()
    except OSError:
        return False


def _write_in_place(path: Path, payload: bytes, what: str) -> None:
    """Open without blocking, so a FIFO nobody reads is refused instead of hanging the command."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise UserError(f"{path}: cannot write the {what}: a FIFO or socket with no reader") from None
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)


def open_log(path: Path):
    """A log file a child process streams into (it cannot be written at once, so not through write_output):
    truncated or created, never through a symbolic link (O_NOFOLLOW), as the writer never writes through one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        reason = "is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise UserError(f"{path}: cannot write the log ({reason})") from None
    return os.fdopen(fd, "w")


def make_output_dir(path: str | Path, what: str = "outputs") -> Path:
    """Create the folder the user named, and its missing parents."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists() or path.is_symlink():
        raise UserError(f"{path}: exists and is not a folder; name a folder for the {what}")
    _check_creatable(path.parent, path, what)
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create the folder for the {what} ({exc.strerror})") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

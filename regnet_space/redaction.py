"""Keeping database passwords out of everything the tool prints, exports or logs.

A storage URL's password may hold any character: ``/``, ``@``, ``:``, ``#``, ``?``, raw or percent-encoded.
A regular expression that stops at the first ``/`` or ``@`` leaks the rest, so the URL is split the way a
person writes it: the user information runs from ``scheme://`` to the *last* ``@`` of the URL. Every
password the process has seen (``remember_url``) is also masked wherever it appears, raw, percent-decoded or
percent-encoded, because drivers and SQLAlchemy quote URLs in their own error messages.

Kept free of heavy imports: the CLI uses it for every error line.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote

MASK = "***"
# A URL with user information inside free text: scheme://user:secret@... up to the last '@' of the line (a raw
# password may even hold a space; masking a little too much is the safe side). Any number of slashes: Path()
# makes ``scheme:/user:secret@host`` of a URL given as a folder, and a typo may add one.
_URL_WITH_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*:/+[^\s:/@'\"]*):(?P<secret>[^\n]*)@")
# A password as a key=value pair: a URL's query (``?password=...``) or a libpq connection string.
_PASSWORD_PAIR = re.compile(r"(?i)(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<secret>[^\s&;'\"<>]+)")
_SECRETS: set[str] = set()
MIN_SECRET_LENGTH = 3  # shorter "passwords" would mask ordinary letters everywhere; the URL rule still hides them


def split_url(url: str) -> tuple[str, str | None, str | None, str]:
    """``scheme://user:password@rest`` -> (``scheme://``, user, password, rest); user information ends at the
    last ``@``, so a raw ``@``, ``/``, ``:``, ``#`` or ``?`` in the password stays in the password.
    User and password are None when absent."""
    scheme, sep, remainder = url.partition("://")
    if not sep:
        return "", None, None, url
    at = remainder.rfind("@")
    if at < 0:
        return scheme + sep, None, None, remainder
    userinfo, rest = remainder[:at], remainder[at + 1:]
    user, colon, password = userinfo.partition(":")
    return scheme + sep, user, password if colon else None, rest


def normalize_url(url: str) -> str:
    """The URL with its password percent-encoded exactly once, as SQLAlchemy expects; the password is
    remembered for redaction. A password already percent-encoded stays as it is."""
    scheme, user, password, rest = split_url(url)
    if password is None:
        return url
    remember_secret(password)
    encoded = quote(unquote(password), safe="")
    return f"{scheme}{user}:{encoded}@{rest}"


def remember_url(url: str | None) -> None:
    if url:
        _, _, password, _ = split_url(url)
        if password:
            remember_secret(password)


def remember_secret(secret: str) -> None:
    for form in {secret, unquote(secret), quote(unquote(secret), safe=""), quote(unquote(secret))}:
        if len(form) >= MIN_SECRET_LENGTH:
            _SECRETS.add(form)


def redact_urls(text: str) -> str:
    """``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db`` anywhere in ``text`` (whatever the case
    and the number of slashes), and ``password=secret`` -> ``password=***``; other text unchanged. What every
    file the tool writes passes through: it reads the text's shape only, so it cannot mangle data the way
    masking a remembered password everywhere could (a password ``123`` inside a number)."""
    text = _URL_WITH_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _PASSWORD_PAIR.sub(lambda m: f"{m['head']}{MASK}", text)


def redact(text: str) -> str:
    """``redact_urls``, and every remembered password masked: for what is printed and logged."""
    text = redact_urls(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):  # longest first: a form may contain another
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks passwords in log records (Optuna's and SQLAlchemy's warnings reach the worker logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def install_log_redaction() -> None:
    """Redact every log record that reaches a handler of the root or ``optuna`` logger, and every warning."""
    import warnings

    shown = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        shown(redact(str(message)), category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    for name in ("", "optuna", "sqlalchemy"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())

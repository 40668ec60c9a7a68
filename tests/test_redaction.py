"""Passwords never leak: a table of awkward passwords through redact(), error lines and `study status`."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from regnet_space.cli import main
from regnet_space.redaction import normalize_url, redact, split_url

# Each password holds a distinctive fragment on either side of the awkward characters, so a leak of any part
# (the defect: everything after a '/' or an '@' was printed) is caught.
PASSWORDS = [
    "Qab/Qcd", "S3cr@t/x7", "Qpq:Qrs", "Qhash#Qtag", "Qque?Qry", "Qsl/Qsh@Qat:Qco#Qha?Qqq", "Qpct%2FQenc",
    "Qa1@Qb2@Qc3@Qd4", "Qend/", "/Qlead", "Qsp Qace", "Qun\u00e9Qcode", "Qsemi;Qco&Qamp=Qeq", "Qback\\Qslash",
    "Qbr[Qet]Qs",
]


def fragments(password: str) -> list[str]:
    return [p for p in re.split(r"[/@:#?%; &=\\\[\]]", password) if len(p) >= 3] + [password]


def forms(password: str) -> list[str]:
    """The raw password (invalid in a URL but what people type) and the percent-encoded one."""
    return [password, quote(password, safe="")]


@pytest.mark.parametrize("password", PASSWORDS)
def test_split_url_keeps_the_whole_password(password):
    for form in forms(password):
        scheme, user, secret, rest = split_url(f"postgresql+psycopg://alice:{form}@db.example:5432/regnet")
        assert (scheme, user, secret, rest) == ("postgresql+psycopg://", "alice", form, "db.example:5432/regnet")


@pytest.mark.parametrize("password", PASSWORDS)
def test_redact_masks_every_fragment_in_free_text(password):
    for form in forms(password):
        url = f"postgresql+psycopg://alice:{form}@db.example:5432/regnet"
        for text in (url, f"storage {url}: connection refused", f"cannot open '{url}'\nnext line"):
            clean = redact(text)
            assert "alice:***@db.example:5432/regnet" in clean
            leaked = [f for f in fragments(form) if f in clean.replace("alice:***@db.example:5432/regnet", "")]
            assert not leaked, (text, clean)


def test_normalize_url_percent_encodes_once():
    assert normalize_url("postgresql+psycopg://u:ab/cd@h/db") == "postgresql+psycopg://u:ab%2Fcd@h/db"
    assert normalize_url("postgresql+psycopg://u:ab%2Fcd@h/db") == "postgresql+psycopg://u:ab%2Fcd@h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"


def test_redact_leaves_other_text_alone():
    for text in ("runs/x/study.journal", "postgresql+psycopg://bob@host/db", "a: b @ c", "mail me@example.com"):
        assert redact(text) == text


@pytest.mark.parametrize("password", PASSWORDS)
def test_status_and_errors_never_show_the_password(tmp_path, postgres_url, capsys, password):
    """The test server trusts every password, so each awkward one (raw and encoded) reaches a real study."""
    from study_helpers import tiny_spec

    from regnet_space.study import load_study_spec
    from regnet_space.study.session import open_study

    port_db = postgres_url.rsplit("@", 1)[1]
    spec = tiny_spec(tmp_path, name="redact", n=1)
    open_study(load_study_spec(spec), storage_url=postgres_url)
    outputs = []
    for form in forms(password):
        url = f"postgresql+psycopg://postgres:{form}@{port_db}"
        for flags in (["--json"], []):
            assert main(["study", "status", str(spec), "--storage", url, *flags]) == 0
            outputs.append(capsys.readouterr())
        missing = tiny_spec(tmp_path, name="nothing-here", n=1)
        assert main(["study", "status", str(missing), "--storage", url]) == 2
        outputs.append(capsys.readouterr())
        bad_host = f"postgresql+psycopg://postgres:{form}@{port_db.replace('127.0.0.1', 'host.invalid')}"
        assert main(["study", "status", str(spec), "--storage", bad_host.replace("+psycopg", "")]) == 2
        outputs.append(capsys.readouterr())
    text = "\n".join(o.out + o.err for o in outputs)
    assert "postgres:***@" in text
    leaked = [f for form in forms(password) for f in fragments(form) if f in text.replace("postgres:***@", "")]
    assert not leaked, text

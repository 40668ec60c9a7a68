"""Hostile and careless outputs and URLs (issue 24): every file any command writes goes through one writer
(``userfiles.write_output``) that creates missing parent folders, never writes through a symbolic link, never
hangs on a FIFO, ends a read-only folder or a full disk in one line, and keeps database passwords out of every
text it writes.
"""

from __future__ import annotations

import os
import re
import stat

import pytest

from regnet_space.cli import main
from regnet_space.redaction import redact
from regnet_space.userfiles import write_output

SECRET = "Qh0st1le/pw@x"
URL = f"postgresql+psycopg://alice:{SECRET}@db.example:5432/regnet"
MODEL = ["--regnet", "depth=2,w0=8,wa=8,wm=2,group_width=8"]


def one_line_error(code, err, pattern):
    """Exit 2, no traceback, and one error line, the last (a progress bar may come before it)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("regnet-space: error: "), err
    assert sum(line.startswith("regnet-space: error") for line in lines) == 1, err
    assert re.search(pattern, lines[-1]), lines[-1]


def leaked(text: str) -> bool:
    return any(part in text for part in ("Qh0st1le", "pw@x", SECRET))


# (id, argv after the model; {out} is the output path)
WRITERS = [
    ("export-timm", ["export", *MODEL, "--format", "timm", "--out", "{out}"]),
    ("export-pycls", ["export", *MODEL, "--format", "pycls", "--out", "{out}"]),
    ("scale", ["scale", *MODEL, "--flops", "200K", "--out", "{out}"]),
    ("sample", ["sample", "regnetx", "-n", "2", "--out", "{out}"]),
]


@pytest.mark.parametrize("case, argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_missing_parent_folders_are_created(tmp_path, capsys, case, argv):
    """Defect 11: README commands with --out runs/... failed on a fresh clone (no runs/)."""
    out = tmp_path / "runs" / "deeper" / "out.file"
    assert main([a.format(out=out) for a in argv]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0


@pytest.mark.parametrize("case, argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_a_symlink_out_never_overwrites_its_target(tmp_path, capsys, case, argv):
    """Defect 4: --out naming a symbolic link clobbered the file it points to."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    link = tmp_path / "out.link"
    link.symlink_to(victim)
    code = main([a.format(out=link) for a in argv])
    one_line_error(code, capsys.readouterr().err, r"out\.link: .*symbolic link")
    assert victim.read_text() == "precious\n" and link.is_symlink()


@pytest.mark.parametrize("case, argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_a_fifo_without_a_reader_does_not_hang(tmp_path, capsys, case, argv):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    code = main([a.format(out=fifo) for a in argv])
    one_line_error(code, capsys.readouterr().err, r"out\.fifo: .*no reader")


@pytest.mark.parametrize("case, argv", WRITERS, ids=[w[0] for w in WRITERS])
def test_full_disk_and_read_only_folder_are_one_line(tmp_path, capsys, case, argv):
    code = main([a.format(out="/dev/full") for a in argv])
    one_line_error(code, capsys.readouterr().err, r"/dev/full: cannot write .*No space left")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code = main([a.format(out=locked / "sub" / "o.file") for a in argv])
        one_line_error(code, capsys.readouterr().err, r"locked.*not writable")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_parent_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(["export", *MODEL, "--format", "timm", "--out", str(tmp_path / "afile" / "o.json")])
    one_line_error(code, capsys.readouterr().err, r"afile.* not a folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "o.json"
    target.write_text("old\n")

    def interrupted(fd):  # Ctrl-C after the data is written, before it is renamed into place
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_output(target, "new\n" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["o.json"]


@pytest.mark.parametrize("text", [
    URL,
    URL.replace("://", ":/"),  # what Path() makes of a URL (defect 3)
    URL.replace("://", ":///"),
    URL.upper(),
    f"postgresql+psycopg://alice@db.example/regnet?sslmode=require&password={SECRET.replace('/', '%2F')}",
    f"host=db.example user=alice password={SECRET.replace(' ', '')} dbname=regnet",
    f'storage = "{URL}"  # shared',
])
def test_redaction_does_not_depend_on_the_shape_of_the_url(text):
    assert not leaked(redact(text)), redact(text)


def test_a_url_given_to_dir_is_never_printed(tmp_path, capsys):
    """Defect 3: Path() turned ``://`` into ``:/`` and the password was printed."""
    spec = tmp_path / "s.toml"
    from study_helpers import tiny_study

    spec.write_text(tiny_study("urldir"))
    for argv in (["status"], ["export", "--out", str(tmp_path / "r.csv")], ["run", "--quiet"]):
        code = main(["study", argv[0], str(spec), "--dir", URL, *argv[1:]])
        err = capsys.readouterr().err
        one_line_error(code, err, r"--dir")
        assert not leaked(err)


def test_every_text_written_is_redacted(tmp_path):
    """Defect 2: the writer itself masks URLs' passwords, whatever text a command hands it."""
    out = write_output(tmp_path / "r.html", f"<pre>storage = &quot;{URL}&quot;</pre>\n{URL.replace('://', ':/')}\n")
    assert not leaked(out.read_text())
    assert "db.example:5432/regnet" in out.read_text()


def test_onnx_without_the_onnx_package_names_the_extra(tmp_path, capsys, monkeypatch):
    """Defect 8: a 25-line traceback when the optional onnx package is missing."""
    import sys

    for name in [m for m in sys.modules if m == "onnx" or m.startswith("onnx.") or m.startswith("onnxscript")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    code = main(["export", *MODEL, "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    one_line_error(code, capsys.readouterr().err, r"onnx.*regnet-space\[export\]")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("command", [["status"], ["run", "--quiet"]])
def test_study_dir_naming_a_file_or_a_read_only_folder(tmp_path, capsys, command):
    """Defect 8: `study run --dir` naming a file or a read-only folder ended in a traceback."""
    from study_helpers import tiny_study

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_study("ro"))
    code = main(["study", command[0], str(spec), "--dir", str(spec), *command[1:]])
    one_line_error(code, capsys.readouterr().err, r"--dir .*s\.toml: is a file")
    if os.geteuid() == 0:
        return  # root writes into read-only folders
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code = main(["study", command[0], str(spec), "--dir", str(locked / "d"), *command[1:]])
    one_line_error(code, capsys.readouterr().err, r"locked")


def test_status_of_a_missing_sqlite_database_creates_nothing(tmp_path, capsys):
    """Defect 9: `study status` on a not-yet-existing sqlite:/// URL created the database file."""
    from study_helpers import tiny_study

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_study("lite"))
    database = tmp_path / "none.db"
    code = main(["study", "status", str(spec), "--storage", f"sqlite:///{database}"])
    one_line_error(code, capsys.readouterr().err, r"none\.db does not exist")
    assert not database.exists()


def test_a_worker_log_that_is_a_symlink_is_not_written_through(tmp_path, capsys):
    """Defect 4: every file a command writes, the workers' logs of `study run` too."""
    from study_helpers import tiny_study

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_study("logs", n=1))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "d" / "logs").mkdir(parents=True)
    (tmp_path / "d" / "logs" / "worker-0.log").symlink_to(victim)
    code = main(["study", "run", str(spec), "--dir", str(tmp_path / "d"), "--quiet"])
    one_line_error(code, capsys.readouterr().err, r"worker-0\.log: cannot write the log \(is a symbolic link\)")
    assert victim.read_text() == "precious\n"

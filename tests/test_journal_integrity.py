"""A torn or corrupt journal is detected before anything reads or appends to it, and `study repair` cuts it back
to its last complete record, losing at most the torn record (defect 2: a truncated journal was misread
silently, then corrupted for good by the next append)."""

from __future__ import annotations

import json
import os

import pytest

from regnet_space.cli import main
from study_helpers import tiny_study


@pytest.fixture(scope="module")
def journal_study(tmp_path_factory):
    """A journal study of 2 spaces x 2 models, all enqueued; its last record is a small user attribute."""
    from regnet_space.study import load_study_spec
    from regnet_space.study.population import DataShape, build_population, population_distributions
    from regnet_space.study.session import open_study
    from regnet_space.study.trials import enqueue_missing

    tmp = tmp_path_factory.mktemp("journal")
    spec = tmp / "j.toml"
    spec.write_text(tiny_study("j", n=2, train=64))
    session = open_study(load_study_spec(spec), directory=str(tmp / "study"))
    enqueue_missing(session.study, session.storage, build_population(session.spec, DataShape(8, 1, 4)),
                    stale_after=8, distributions=population_distributions(session.spec))
    session.storage.set_trial_user_attr(session.study.get_trials()[0]._trial_id, "note", "last")
    journal = tmp / "study" / "study.journal"
    return spec, journal, journal.read_bytes()


def status(spec, journal, capsys):
    code = main(["study", "status", str(spec), "--dir", str(journal.parent), "--json"])
    out = capsys.readouterr()
    return code, out


def test_truncation_at_every_byte_of_the_last_record(journal_study, capsys, tmp_path):
    spec, journal, good = journal_study
    start = good.rstrip(b"\n").rfind(b"\n") + 1  # first byte of the last record
    complete = good[:start]  # the journal without its last record: what repair must give back
    assert len(good) - start > 20
    for cut in range(start + 1, len(good)):  # every torn length: 1 byte .. all but the newline
        journal.write_bytes(good[:cut])
        code, out = status(spec, journal, capsys)
        assert code == 2 and "Traceback" not in out.err, (cut, out.err)
        assert "damaged" in out.err and f"study repair {spec}" in out.err, out.err
        for command in (["study", "export", str(spec), "--dir", str(journal.parent), "--out", str(tmp_path / "x.csv")],
                        ["study", "run", str(spec), "--dir", str(journal.parent), "--quiet"]):
            if cut % 16 == 0:  # run and export say the same (sampled: each opens the study the same way)
                assert main(command) == 2 and "damaged" in capsys.readouterr().err
        assert journal.read_bytes() == good[:cut], "a command changed the damaged journal"
        assert main(["study", "repair", str(spec), "--dir", str(journal.parent)]) == 0
        capsys.readouterr()
        assert journal.read_bytes() == complete, cut
        code, out = status(spec, journal, capsys)
        assert code == 0 and json.loads(out.out)["total"] == 4
        for backup in journal.parent.glob("study.journal.damaged-*"):
            assert backup.read_bytes() == good[:cut]
            backup.unlink()
    journal.write_bytes(good)
    assert status(spec, journal, capsys)[0] == 0
    assert main(["study", "repair", str(spec), "--dir", str(journal.parent)]) == 0  # nothing to do
    assert journal.read_bytes() == good


def test_glued_record_after_a_torn_one_is_recovered(journal_study, capsys):
    """The state the old code left: a torn record, then a whole record appended onto the half line."""
    spec, journal, good = journal_study
    start = good.rstrip(b"\n").rfind(b"\n") + 1
    last = good[start:]
    journal.write_bytes(good[:start] + last[: len(last) // 2] + last)
    assert status(spec, journal, capsys)[0] == 2
    assert main(["study", "repair", str(spec), "--dir", str(journal.parent)]) == 0
    assert journal.read_bytes() == good  # only the torn half is lost
    for backup in journal.parent.glob("study.journal.damaged-*"):
        backup.unlink()


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_journal_is_refused(journal_study, capsys, seed):
    spec, journal, good = journal_study
    rng = __import__("random").Random(seed)
    junk = bytes(rng.randrange(256) for _ in range(3000)) + (b"\n" if seed % 2 else b"")
    journal.write_bytes(junk)
    for argv in (["study", "status", str(spec)], ["study", "export", str(spec), "--out", str(journal.parent / "o.csv")],
                 ["study", "run", str(spec), "--quiet"]):
        code = main(argv + ["--dir", str(journal.parent)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and "damaged" in err, err
    assert journal.read_bytes() == junk
    assert main(["study", "repair", str(spec), "--dir", str(journal.parent)]) == 2
    assert "no complete journal record" in capsys.readouterr().err
    assert journal.read_bytes() == junk
    journal.write_bytes(good)


def test_append_to_a_torn_journal_is_refused(journal_study):
    from regnet_space.errors import UserError
    from regnet_space.study.storage import CheckedJournalBackend

    _, journal, good = journal_study
    journal.write_bytes(good[:-3])
    with pytest.raises(UserError, match="torn"):
        CheckedJournalBackend(str(journal)).append_logs([{"op_code": 0}])
    assert journal.read_bytes() == good[:-3]
    journal.write_bytes(good)
    assert not os.path.exists(str(journal) + ".lock")


@pytest.mark.parametrize("record, why", [
    ({"op_code": 99, "worker_id": "x"}, "unknown op_code 99"),
    ({"op_code": 6, "worker_id": "x", "trial_id": 9999, "state": 1, "values": [1.0]}, "trial_id 9999"),
    ({"op_code": 8, "worker_id": "x", "trial_id": 9999, "user_attr": {"val_error": 1.0}}, "trial_id 9999"),
    ({"op_code": 4, "worker_id": "x", "study_id": 77}, "study_id 77"),
    ({"op_code": 6, "worker_id": "x", "state": 1}, "trial_id None"),
    ({"op_code": 8, "worker_id": "x", "trial_id": 0}, "without 'user_attr'"),
])
def test_well_formed_records_that_optuna_cannot_replay_are_refused(journal_study, capsys, tmp_path, record, why):
    """Issue 24, defect 7: JSON records that are not Optuna's (an unknown op_code, a trial no record created)
    passed the check; `study export` then died with Optuna's "AssertionError: Should not reach."."""
    spec, journal, good = journal_study
    damaged = good + json.dumps(record).encode() + b"\n"
    journal.write_bytes(damaged)
    try:
        for command in (["status"], ["export", "--out", str(tmp_path / "x.csv")]):
            code = main(["study", command[0], str(spec), "--dir", str(journal.parent), *command[1:]])
            err = capsys.readouterr().err
            assert code == 2 and "Traceback" not in err and "damaged" in err and why in err, err
            assert journal.read_bytes() == damaged
    finally:
        journal.write_bytes(good)


def test_a_full_disk_during_an_append_leaves_the_journal_as_it_was(journal_study, capsys):
    """Issue 24, defect 6: a full disk tore the journal with a raw OSError traceback, and the advised rerun failed
    until `study repair`. The file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) stands in for the full disk: the
    write stops part-way with an OSError, as ENOSPC does; the record must be cut back and one line given."""
    import subprocess
    import sys

    spec, journal, good = journal_study
    script = f"""
import resource, signal
from pathlib import Path
from regnet_space.errors import UserError
from regnet_space.study.storage import CheckedJournalBackend
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({len(good) + 100}, resource.RLIM_INFINITY))
try:
    CheckedJournalBackend({str(journal)!r}).append_logs([{{"op_code": 8, "worker_id": "w", "trial_id": 0,
                                                          "user_attr": {{"note": "x" * 5000}}}}])
except UserError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    line = done.stdout.strip()
    assert len(line.splitlines()) == 1 and str(journal.parent) in line and "free" in line, line
    assert "cannot append to the study journal" in line
    assert journal.read_bytes() == good
    code, out = status(spec, journal, capsys)
    assert code == 0, out.err

"""Hostile and careless input, table-driven: every case ends with exit 2, one line naming the problem, no
traceback, and the study's files (and the results table) byte-identical afterwards.

Commands run in-process (``regnet_space.cli.main``) for speed; the study on disk is a real journal study
with a few trials.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from analysis_tables import table
from regnet_space.cli import main
from study_helpers import tiny_study

BASE = tiny_study("victim", n=2, train=64)


def spec_with(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


# (id, spec text or None, argv with {spec} {dir} {tmp} {csv} placeholders, regex the message must match)
SPEC_CASES = [
    ("toml-not-utf8", b"name = \"\xff\xfe\"\n", "status", r"not UTF-8"),
    ("toml-invalid", "name = [", "status", r"not valid TOML"),
    ("name-dotdot", spec_with('name = "victim"', 'name = ".."'), "status", r"name: '\.\.'"),
    ("name-dot", spec_with('name = "victim"', 'name = "."'), "status", r"name: '\.'"),
    ("name-slash", spec_with('name = "victim"', 'name = "a/b"'), "status", r"name: 'a/b'"),
    ("name-backslash", spec_with('name = "victim"', 'name = "a\\\\b"'), "status", r"name: "),
    ("name-empty", spec_with('name = "victim"', 'name = ""'), "status", r"name: ''"),
    ("name-parent-prefix", spec_with('name = "victim"', 'name = "../victim"'), "status", r"name: '\.\./victim'"),
    ("name-missing", spec_with('name = "victim"', ''), "status", r"name: missing"),
    ("time-limit-negative", "time_limit = -1\n" + BASE, "status", r"time_limit: .*-1"),
    ("time-limit-zero", "time_limit = 0\n" + BASE, "status", r"time_limit"),
    ("time-limit-nan", "time_limit = nan\n" + BASE, "status", r"time_limit.*nan"),
    ("time-limit-text", 'time_limit = "long"\n' + BASE, "status", r"time_limit"),
    ("seed-float", spec_with("seed = 0", "seed = 1.5"), "status", r"seed"),
    ("unknown-top-key", "colour = 1\n" + BASE, "status", r"colour: unknown key"),
    ("measure-latency-text", spec_with("measure_latency = true", 'measure_latency = "yes"'), "status",
     r"measure_latency"),
    ("storage-number", "storage = 5\n" + BASE, "status", r"storage"),
    ("storage-no-driver", 'storage = "postgresql://u:pw@127.0.0.1:1/db"\n' + BASE, "status", r"name the driver"),
    ("dataset-unknown-key", spec_with("val_size = 64", "val_size = 64\nbogus = 1"), "status",
     r"dataset\.bogus: unknown key"),
    ("dataset-device-key", spec_with("val_size = 64", 'val_size = 64\ndevice = "cuda"'), "status",
     r"dataset\.device: unknown key"),
    ("dataset-unknown-name", spec_with('name = "synthetic:res=8,train=64,test=64"', 'name = "imagenet"'),
     "status", r"dataset\.name: unknown dataset"),
    ("dataset-synthetic-option", spec_with('name = "synthetic:res=8,train=64,test=64"', 'name = "synthetic:x=1"'),
     "status", r"dataset\.name: synthetic"),
    ("dataset-synthetic-nan", spec_with('name = "synthetic:res=8,train=64,test=64"', 'name = "synthetic:noise=nan"'),
     "status", r"dataset\.name: synthetic"),
    ("dataset-cifar-no-dir", spec_with('name = "synthetic:res=8,train=64,test=64"', 'name = "cifar10"'),
     "status", r"dataset\.name: .*needs a directory"),
    ("dataset-val-size-negative", spec_with("val_size = 64", "val_size = -1"), "status", r"dataset\.val_size"),
    ("dataset-val-size-text", spec_with("val_size = 64", 'val_size = "all"'), "status", r"dataset\.val_size"),
    ("dataset-augment-text", spec_with("val_size = 64", 'val_size = 64\naugment = "yes"'), "status",
     r"dataset\.augment"),
    ("dataset-not-table", spec_with("[dataset]\n", "dataset = 3\n[dataset2]\n"), "status", r"dataset"),
    ("proxy-epochs-negative", spec_with("epochs = 1", "epochs = -1"), "run", r"proxy\.epochs"),
    ("proxy-epochs-text", spec_with("epochs = 1", 'epochs = "two"'), "status", r"proxy\.epochs"),
    ("proxy-epochs-float", spec_with("epochs = 1", "epochs = 1.5"), "status", r"proxy\.epochs"),
    ("proxy-lr-text", spec_with("epochs = 1", 'epochs = 1\nlr = "fast"'), "status", r"proxy\.lr"),
    ("proxy-lr-inf", spec_with("epochs = 1", "epochs = 1\nlr = inf"), "status", r"proxy\.lr"),
    ("proxy-lr-negative", spec_with("epochs = 1", "epochs = 1\nlr = -0.1"), "status", r"proxy\.lr"),
    ("proxy-unknown", spec_with("epochs = 1", "epochs = 1\nbogus = 1"), "status", r"proxy\.bogus: unknown key"),
    ("proxy-batch-zero", spec_with("batch_size = 64", "batch_size = 0"), "status", r"proxy\.batch_size"),
    ("proxy-precision", spec_with("epochs = 1", 'epochs = 1\nprecision = "fp8"'), "status", r"proxy\.precision"),
    ("proxy-fraction", spec_with("train_fraction = 1.0", "train_fraction = 2.0"), "status",
     r"proxy\.train_fraction"),
    ("proxy-momentum-bool", spec_with("epochs = 1", "epochs = 1\nmomentum = true"), "status", r"proxy\.momentum"),
    ("workers-heartbeat-negative", spec_with("heartbeat_interval = 0.5", "heartbeat_interval = -1"), "status",
     r"workers\.heartbeat_interval"),
    ("workers-heartbeat-nan", spec_with("heartbeat_interval = 0.5", "heartbeat_interval = nan"), "status",
     r"workers\.heartbeat_interval"),
    ("workers-stale-text", spec_with("stale_after = 8", 'stale_after = "soon"'), "status", r"workers\.stale_after"),
    ("workers-stale-short", spec_with("stale_after = 8", "stale_after = 0.6"), "status", r"workers\.stale_after"),
    ("workers-unknown", spec_with("stale_after = 8", "stale_after = 8\nbogus = 1"), "status",
     r"workers\.bogus: unknown key"),
    ("workers-outage-negative", spec_with("stale_after = 8", "stale_after = 8\noutage_timeout = -5"), "status",
     r"workers\.outage_timeout"),
    ("workers-max-attempts-zero", spec_with("stale_after = 8", "stale_after = 8\nmax_attempts = 0"), "status",
     r"workers\.max_attempts"),
    ("workers-max-attempts-float", spec_with("stale_after = 8", "stale_after = 8\nmax_attempts = 2.5"), "status",
     r"workers\.max_attempts"),
    ("space-unknown-run", spec_with('space = "regnetx"', 'space = "nonexistent_space"'), "run",
     r"spaces\[0\]\.space: unknown design space"),
    ("space-missing-file", spec_with('space = "regnetx"', 'space = "../nowhere.toml"'), "status",
     r"spaces\[0\]\.space"),
    ("space-n-zero", spec_with("n = 2", "n = 0"), "status", r"spaces\[0\]\.n"),
    ("space-n-text", spec_with("n = 2", 'n = "many"'), "status", r"spaces\[0\]\.n"),
    ("space-window-text", spec_with("n = 2", 'n = 2\nflops = "lots"'), "status", r"spaces\[0\]\.flops"),
    ("space-window-inverted", spec_with('flops = "0:400K"', 'flops = "20M:5M"'), "status", r"complexity\.flops"),
    ("space-unknown-key", spec_with("n = 2", "n = 2\ncolour = 1"), "status", r"spaces\[0\]\.colour"),
    ("spaces-missing", BASE[:BASE.index("[[spaces]]")] + "[workers]\nstale_after = 8\n", "status", r"spaces"),
    ("spaces-duplicate-label", BASE + '[[spaces]]\nspace = "regnetx"\nn = 1\n', "status", r"label 'regnetx'"),
]

# argv templates of commands given bad flags or unwritable outputs
CLI_CASES = [
    ("train-device-banana", ["train", "--regnet", "depth=2,w0=8,wa=8,wm=2,group_width=8", "--dataset",
                             "synthetic", "--device", "banana"], r"--device 'banana'"),
    ("train-device-cuda", ["train", "--regnet", "depth=2,w0=8,wa=8,wm=2,group_width=8", "--dataset",
                           "synthetic", "--device", "cuda"], r"--device cuda: CUDA is not available"),
    ("run-device-banana", ["study", "run", "{spec}", "--dir", "{dir}", "--device", "banana", "--quiet"],
     r"--device 'banana'"),
    ("worker-device-cuda", ["study", "worker", "{spec}", "--dir", "{dir}", "--device", "cuda:3"], r"--device cuda:3"),
    ("describe-w0-huge", ["describe", "--regnet", "depth=13,w0=1e30,wa=36.44,wm=2.49,group_width=8"], r"regnet\.w0"),
    ("describe-wa-huge", ["describe", "--regnet", "depth=13,w0=24,wa=1e30,wm=2.49,group_width=8"], r"regnet\.wa"),
    ("describe-depth-huge", ["describe", "--regnet", "depth=100000000,w0=24,wa=36,wm=2.49,group_width=8"],
     r"regnet\.depth"),
    ("describe-json-not-utf8", ["describe", "{tmp}/latin1.json"], r"not UTF-8"),
    ("describe-json-invalid", ["describe", "{tmp}/invalid.json"], r"not valid JSON"),
    ("sample-space-not-utf8", ["sample", "{tmp}/latin1.toml", "-n", "1"], r"not UTF-8"),
    ("sample-out-dev-full", ["sample", "regnetx", "-n", "2", "--out", "/dev/full"], r"/dev/full: cannot write"),
    ("sample-out-below-a-file", ["sample", "regnetx", "-n", "2", "--out", "{tmp}/invalid.json/s.jsonl"], r"invalid\.json is not a folder"),
    ("sample-out-directory", ["sample", "regnetx", "-n", "2", "--out", "{tmp}"], r"is a directory"),
    ("export-out-dev-full", ["study", "export", "{spec}", "--dir", "{dir}", "--out", "{tmp}/full.csv"],
     r"full\.csv: cannot write"),
    ("export-out-below-a-file", ["study", "export", "{spec}", "--dir", "{dir}", "--out", "{tmp}/invalid.json/r.csv"],
     r"invalid\.json is not a folder"),
    ("export-out-directory", ["study", "export", "{spec}", "--dir", "{dir}", "--out", "{tmp}/adir.csv"],
     r"is a directory"),
    ("export-out-suffix", ["study", "export", "{spec}", "--dir", "{dir}", "--out", "{tmp}/r.txt"], r"\.csv"),
    ("best-out-dev-full", ["best", "{csv}", "--out", "/dev/full"], r"/dev/full: cannot write"),
    ("best-out-below-a-file", ["best", "{csv}", "--out", "{tmp}/invalid.json/best.json"], r"invalid\.json is not a folder"),
    ("best-out-directory", ["best", "{csv}", "--out", "{tmp}"], r"is a directory"),
    ("report-out-dev-full", ["report", "{csv}", "--out", "/dev/full", "--samples", "20"], r"/dev/full: cannot write"),
    ("report-out-below-a-file", ["report", "{csv}", "--out", "{tmp}/invalid.json/r.html"], r"invalid\.json is not a folder"),
    ("report-out-directory", ["report", "{csv}", "--out", "{tmp}"], r"is a directory"),
    ("report-figures-below-a-file", ["report", "{csv}", "--out", "{tmp}/r.html", "--figures", "{tmp}/invalid.json/figs"],
     r"invalid\.json is not a folder"),
    ("refine-out-dev-full", ["refine", "{csv}", "--space", "regnetx", "--out", "/dev/full", "--permutations", "20"],
     r"/dev/full: cannot write"),
    ("refine-out-below-a-file", ["refine", "{csv}", "--space", "regnetx", "--out", "{tmp}/invalid.json/n.toml"],
     r"invalid\.json is not a folder"),
    ("refine-out-directory", ["refine", "{csv}", "--space", "regnetx", "--out", "{tmp}"], r"is a directory"),
    ("edf-plot-below-a-file", ["edf", "{csv}", "--plot", "{tmp}/invalid.json/e.png"], r"invalid\.json is not a folder"),
    ("edf-plot-dev-full", ["edf", "{csv}", "--plot", "{tmp}/full.png"], r"full\.png: cannot write"),
    ("edf-plot-directory", ["edf", "{csv}", "--plot", "{tmp}/adir.png"], r"is a directory"),
    ("edf-plot-suffix", ["edf", "{csv}", "--plot", "{tmp}/e.jpg"], r"png or \.svg"),
    ("edf-results-not-utf8", ["edf", "{tmp}/latin1.csv"], r"latin1\.csv"),
    ("edf-results-random", ["edf", "{tmp}/random.jsonl"], r"random\.jsonl"),
    ("edf-results-missing-column", ["edf", "{tmp}/nocol.csv"], r"missing column 'error'"),
    ("status-no-study-dir", ["study", "status", "{spec}", "--dir", "{tmp}/missing"], r"no study at"),
]


def tree_digest(*roots: Path) -> dict[str, str]:
    digests = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file() and not path.is_symlink():
                digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A real study on disk (journal with enqueued and one finished trial), a results table, and the
    awkward files the cases point at."""
    from optuna.trial import TrialState

    from regnet_space.study import load_study_spec
    from regnet_space.study.population import DataShape, build_population, population_distributions
    from regnet_space.study.session import open_study
    from regnet_space.study.trials import enqueue_missing

    tmp = tmp_path_factory.mktemp("bad-input")
    spec = tmp / "victim.toml"
    spec.write_text(BASE)
    directory = tmp / "study"
    session = open_study(load_study_spec(spec), directory=str(directory))
    population = build_population(session.spec, DataShape(8, 1, 4))
    enqueue_missing(session.study, session.storage, population, stale_after=8,
                    distributions=population_distributions(session.spec))
    trial = session.study.get_trials()[0]
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING)
    session.storage.set_trial_user_attr(trial._trial_id, "val_error", 50.0)
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[50.0])
    csv = tmp / "results.csv"
    table(20).to_csv(csv, index=False)
    (tmp / "latin1.json").write_bytes('{"name": "caf\u00e9"}'.encode("latin-1"))
    (tmp / "invalid.json").write_text("{not json")
    (tmp / "latin1.toml").write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    (tmp / "latin1.csv").write_bytes("space,error,flops,params,acts\ncaf\u00e9,1,2,3,4\n".encode("latin-1"))
    (tmp / "random.jsonl").write_bytes(os.urandom(4096))
    (tmp / "nocol.csv").write_text("space,flops,params,acts\na,1,2,3\n")
    (tmp / "adir.csv").mkdir()
    (tmp / "adir.png").mkdir()
    for name in ("full.csv", "full.png"):
        (tmp / name).symlink_to("/dev/full")
    return {"tmp": tmp, "spec": spec, "dir": directory, "csv": csv}


def run_case(world, argv, capsys):
    argv = [a.format(**{k: str(v) for k, v in world.items()}) for a in argv]
    before = tree_digest(world["dir"], world["csv"], world["spec"])
    code = main(argv)
    out = capsys.readouterr()
    assert tree_digest(world["dir"], world["csv"], world["spec"]) == before, "the study's files changed"
    return code, out


def check(code, out, pattern):
    lines = [line for line in out.err.strip().splitlines() if line.strip()]
    assert code == 2, out.err
    assert "Traceback" not in out.err + out.out
    assert lines and lines[-1].startswith("regnet-space: error: "), out.err
    assert len([line for line in lines if line.startswith("regnet-space: error")]) == 1
    assert pytest.importorskip("re").search(pattern, lines[-1]), lines[-1]


@pytest.mark.parametrize("case, text, command, pattern", SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_bad_study_spec(world, capsys, case, text, command, pattern):
    bad = world["tmp"] / f"{case}.toml"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    argv = ["study", command, str(bad), "--dir", "{dir}"] + (["--quiet"] if command == "run" else [])
    code, out = run_case(world, argv, capsys)
    check(code, out, pattern)


@pytest.mark.parametrize("case, argv, pattern", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_command_line(world, capsys, case, argv, pattern):
    if "cuda" in case:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code, out = run_case(world, argv, capsys)
    check(code, out, pattern)


def test_at_least_sixty_cases():
    assert len(SPEC_CASES) + len(CLI_CASES) >= 60


def test_names_from_data_never_leave_the_figures_folder(tmp_path, capsys):
    """Defect 7: a results table whose space is ``../../../x/evil`` wrote outside ``--figures`` (and made
    folders there)."""
    frame = table(20)
    frame.loc[frame["space"] == "regnetx", "space"] = "../../../x/evil"
    csv = tmp_path / "deep" / "er" / "results.csv"
    csv.parent.mkdir(parents=True)
    frame.to_csv(csv, index=False)
    figures = tmp_path / "deep" / "er" / "figs"
    before = set(tmp_path.rglob("*"))
    assert main(["report", str(csv), "--out", str(tmp_path / "deep" / "er" / "r.html"), "--figures", str(figures),
                 "--samples", "20"]) == 0
    created = set(tmp_path.rglob("*")) - before
    assert created, "nothing written"
    outside = [p for p in created if figures not in p.parents and p != figures and p.name != "r.html"]
    assert not outside, outside
    assert any("evil" in p.name for p in created)


def test_edf_plot_creates_missing_folders(tmp_path, capsys):
    """Issue 24, defect 11: an output's missing parent folders are created (README commands write to runs/)."""
    csv = tmp_path / "r.csv"
    table(10).to_csv(csv, index=False)
    assert main(["edf", str(csv), "--plot", str(tmp_path / "a" / "b" / "e.png")]) == 0
    assert (tmp_path / "a" / "b" / "e.png").stat().st_size > 0


def test_a_reader_that_goes_away_stops_the_command_quietly():
    # `regnet-space sample ... | head`: the pipe closes under the command; no traceback, exit 1 (as other tools).
    import subprocess
    import sys

    command = [sys.executable, "-m", "regnet_space", "sample", "regnetx", "-n", "2000", "--flops", "100M:800M"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(100)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1 and stderr == ""

"""Hostile-input corpus: builds 150+ bad inputs across every command's inputs and outputs (results tables,
published files, model files, space files, study specs, flags, output paths, storage URLs), runs each command
on them, and reports how each ended:

- clean: exit 2, no traceback, the last stderr line "regnet-space: error: ..." (argparse's own usage errors,
  exit 2 without a traceback, count as clean too);
- traceback, other exit (a bad input accepted with exit 0, or exit 1), hang (over --timeout s, killed);
- writes outside the intended output (any file of the sandbox changed, made or removed except the case's own
  output path), secrets printed (a database password in stdout or stderr);
- and whether the study under attack (a real journal study in the sandbox) is byte-identical afterwards.

Each case runs in a process forked from this one after the package is imported (so 200 cases take seconds,
not 200 interpreter starts), with stdout and stderr in files.

    PYTHONPATH=. .venv/bin/python benchmarks/hostile_inputs.py [--timeout 30] [--only SUBSTRING] [--list]

Exit 0 when every case is clean, nothing was written outside its output, no secret was printed and the study
is unchanged; 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from analysis_tables import table  # noqa: E402  (the tests' study-like results table)
from study_helpers import tiny_study  # noqa: E402  (the tests' smallest study spec)

SECRET = "Qc0rpus/pw@x"
URL = f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:1/regnet"
NESTED = "[" * 200_000 + "]" * 200_000


@dataclass
class Case:
    name: str
    argv: list[str]
    output: str | None = None  # the one path the command may write


def _write(root: Path, name: str, data: str | bytes) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def _sweep(mutate) -> str:
    jobs = [{"cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
                     "ANYNET": {"DEPTHS": [1, 1], "WIDTHS": [8, 16], "STRIDES": [2, 2], "STEM_W": 8,
                                "BLOCK_TYPE": "res_bottleneck_block", "STEM_TYPE": "simple_stem_in",
                                "BOT_MULS": [1, 1], "GROUP_WS": [8, 8]}},
             "complexity": {"flops": 1e6 * (i + 1), "params": 1e4, "acts": 1e4},
             "test_epoch": {"min_top1_err": [30.0 + i], "epoch_ind": [1], "epoch_max": [1]}} for i in range(12)]
    mutate(jobs[0])
    return json.dumps(jobs)


def _set(keys: str, value):
    def mutate(job):
        *parents, last = keys.split(".")
        for key in parents:
            job = job[key]
        job[last] = value
    return mutate


def results_inputs(root: Path) -> dict[str, str]:
    """Bad results tables and published files, name -> path."""
    good = table(20)
    csv = lambda **columns: good.assign(**columns).to_csv(index=False)  # noqa: E731
    files = {
        "latin1.csv": "space,error,flops,params\ncaf\u00e9,1,2,3\n".encode("latin-1"),
        "random.jsonl": os.urandom(4096),
        "no-error.csv": good.drop(columns="error").to_csv(index=False),
        "error-150.csv": csv(error=150.0),
        "error-text.csv": csv(error="bad"),
        "flops-1e308.csv": csv(flops=1e308),
        "flops-negative.csv": csv(flops=-1.0),
        "params-inf.csv": csv(params=float("inf")),
        "flops-text.csv": csv(flops="lots"),
        "wm-half.csv": csv(wm=0.5),
        "wa-negative.csv": csv(wa=-1.0),
        "empty.csv": "",
        "header-only.csv": "space,error,flops,params\n",
        "repeated-header.csv": "space,error,error,flops,params\na,1,2,3,4\n",
        "all-failed.csv": csv(status="failed"),
        "nested.jsonl": '{"space": "a", "error": ' + NESTED + "}\n",
        "nested.json": NESTED,
        "not-a-list.json": '{"a": 1}',
        "empty-list.json": "[]",
        "nds-text.json": json.dumps([{"min_test_top1": "x", "flops": 1.0, "params": 1.0}] * 12),
        "nds-negative.json": json.dumps([{"min_test_top1": 30.0 + i, "flops": -1.0, "params": 1.0} for i in range(12)]),
        "cfg-list/sweep.json": _sweep(_set("cfg", [1, 2])),
        "model-text/sweep.json": _sweep(_set("cfg.MODEL", "anynet")),
        "epoch-empty/sweep.json": _sweep(_set("test_epoch.epoch_ind", [])),
        "epoch-int/sweep.json": _sweep(_set("test_epoch.epoch_ind", 3)),
        "no-complexity/sweep.json": _sweep(lambda job: job.pop("complexity")),
        "nan-flops/sweep.json": _sweep(_set("complexity.flops", "nan")),
    }
    paths = {name: _write(root / "tables", name, data) for name, data in files.items()}
    frame = table(20)
    frame["error"] = [[1.0, 2.0]] * len(frame)
    frame.to_parquet(root / "tables" / "list-error.parquet")
    paths["list-error.parquet"] = str(root / "tables" / "list-error.parquet")
    return paths


def model_inputs(root: Path) -> dict[str, str]:
    stage = {"depth": 1, "width": 8}
    files = {
        "depth-1e9.json": json.dumps({"stages": [{"depth": 10**9, "width": 8}]}),
        "width-1e9.json": json.dumps({"stages": [{"depth": 1, "width": 10**9}]}),
        "resolution-1e9.json": json.dumps({"stages": [stage], "resolution": 10**9}),
        "classes-1e9.json": json.dumps({"stages": [stage], "num_classes": 10**9}),
        "stages-1e5.json": json.dumps({"stages": [stage] * 100_000}),
        "nested.json": NESTED,
        "latin1.json": '{"name": "caf\u00e9"}'.encode("latin-1"),
        "invalid.json": "{not json",
        "no-stages.json": json.dumps({"stages": []}),
        "stride-3.json": json.dumps({"stages": [{**stage, "stride": 3}]}),
        "block-unknown.json": json.dumps({"stages": [{**stage, "block": "transformer"}]}),
        "a-list.json": "[1, 2, 3]",
        "classes-zero.json": json.dumps({"stages": [stage], "num_classes": 0}),
    }
    return {name: _write(root / "models", name, data) for name, data in files.items()}


def space_inputs(root: Path) -> dict[str, str]:
    from regnet_space.spaces import load_space

    space = load_space("anynetx_a").to_toml()
    edits = {
        "depth-1e9.toml": ("hi = 16 }", "hi = 1000000000 }"),
        "stages-1e5.toml": ("num_stages = 4", "num_stages = 100000"),
        "stages-zero.toml": ("num_stages = 4", "num_stages = 0"),
        "lo-above-hi.toml": ("lo = 1, hi = 16 }", "lo = 16, hi = 1 }"),
        "q-zero.toml": ("lo = 8, hi = 1024, q = 8 }", "lo = 8, hi = 1024, q = 0 }"),
        "unknown-key.toml": ("num_stages = 4", "num_stages = 4\ncolour = 1"),
    }
    paths = {}
    for name, (old, new) in edits.items():
        assert old in space, (name, old)
        paths[name] = _write(root / "spaces", name, space.replace(old, new))
    paths["not-toml.toml"] = _write(root / "spaces", "not-toml.toml", "name = [")
    return paths


def spec_inputs(root: Path) -> dict[str, str]:
    base = tiny_study("victim", n=2, train=64)
    edits = {
        "seed-negative": ("seed = 0", "seed = -1"), "name-dotdot": ('name = "victim"', 'name = ".."'),
        "epochs-text": ("epochs = 1", 'epochs = "two"'), "n-zero": ("n = 2", "n = 0"),
        "window-inverted": ('flops = "0:400K"', 'flops = "20M:5M"'), "unknown-key": ("seed = 0", "seed = 0\nx = 1"),
        "storage-number": ("seed = 0", "seed = 0\nstorage = 5"),
        "storage-no-driver": ("seed = 0", 'seed = 0\nstorage = "postgresql://u:' + SECRET + '@127.0.0.1:1/db"'),
        "dir-number": ("seed = 0", "seed = 0\ndir = 5"),
        "space-missing": ('space = "regnetx"', 'space = "../nowhere.toml"'),
    }
    paths = {}
    for name, (old, new) in edits.items():
        assert old in base, (name, old)
        paths[name] = _write(root / "specs", f"{name}.toml", base.replace(old, new, 1))
    paths["not-utf8"] = _write(root / "specs", "not-utf8.toml", b'name = "\xff\xfe"\n')
    return paths


def build(root: Path) -> tuple[list[Case], Path, Path]:
    """The sandbox under ``root``: a victim study, a good table, the bad inputs; and the cases."""
    from optuna.trial import TrialState

    from regnet_space.study import load_study_spec
    from regnet_space.study.population import DataShape, build_population, population_distributions
    from regnet_space.study.session import open_study
    from regnet_space.study.trials import enqueue_missing

    spec = Path(_write(root, "victim.toml", tiny_study("victim", n=2, train=64)))
    study = root / "study"
    session = open_study(load_study_spec(spec), directory=str(study))
    enqueue_missing(session.study, session.storage, build_population(session.spec, DataShape(8, 1, 4)),
                    stale_after=8, distributions=population_distributions(session.spec))
    trial = session.study.get_trials()[0]
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING)
    session.storage.set_trial_user_attr(trial._trial_id, "val_error", 50.0)
    session.storage.set_trial_state_values(trial._trial_id, state=TrialState.COMPLETE, values=[50.0])
    good = _write(root, "good.csv", table(20).to_csv(index=False))
    out = str(root / "out")
    cases: list[Case] = []
    for name, path in results_inputs(root).items():
        cases += [Case(f"edf {name}", ["edf", path]),
                  Case(f"report {name}", ["report", path, "--out", f"{out}/r.html", "--samples", "20"], f"{out}/r.html"),
                  Case(f"refine {name}", ["refine", path, "--space", "regnetx", "--out", f"{out}/n.toml",
                                          "--permutations", "20"], f"{out}/n.toml"),
                  Case(f"best {name}", ["best", path])]
    for name, path in model_inputs(root).items():
        cases += [Case(f"describe {name}", ["describe", path]),
                  Case(f"export {name}", ["export", path, "--format", "timm", "--out", f"{out}/m.json"], f"{out}/m.json"),
                  Case(f"scale {name}", ["scale", path, "--flops", "1M", "--out", f"{out}/s.json"], f"{out}/s.json")]
    for name, path in space_inputs(root).items():
        cases.append(Case(f"sample {name}", ["sample", path, "-n", "2"]))
    for name, path in spec_inputs(root).items():
        cases.append(Case(f"status {name}", ["study", "status", path, "--dir", str(study)]))
    model = ["--regnet", "depth=2,w0=8,wa=8,wm=2,group_width=8"]
    writers = {
        "export": ["export", *model, "--format", "timm", "--out"], "scale": ["scale", *model, "--flops", "1M", "--out"],
        "sample": ["sample", "regnetx", "-n", "2", "--out"], "best": ["best", good, "--out"],
        "report": ["report", good, "--samples", "20", "--out"], "edf-plot": ["edf", good, "--plot"],
        "refine": ["refine", good, "--space", "regnetx", "--permutations", "20", "--out"],
        "study-export": ["study", "export", str(spec), "--dir", str(study), "--out"],
    }
    victim = Path(_write(root, "precious.txt", "precious\n"))
    for suffix in (".csv", ".png"):
        os.mkfifo(root / f"fifo{suffix}")
        (root / f"adir{suffix}").mkdir()
        (root / f"link{suffix}").symlink_to(victim)
        (root / f"full{suffix}").symlink_to("/dev/full")
    for name, argv in writers.items():
        suffix = ".png" if name == "edf-plot" else ".csv"
        for kind, target in (("symlink", f"link{suffix}"), ("fifo", f"fifo{suffix}"), ("folder", f"adir{suffix}"),
                             ("full-disk", f"full{suffix}"), ("below-a-file", f"good.csv/x{suffix}")):
            cases.append(Case(f"{name} out {kind}", [*argv, str(root / target)]))
    cases += [
        Case("status --dir URL", ["study", "status", str(spec), "--dir", URL]),
        Case("export --dir URL", ["study", "export", str(spec), "--dir", URL, "--out", f"{out}/r.csv"], f"{out}/r.csv"),
        Case("status --storage no driver", ["study", "status", str(spec), "--storage", URL.replace("+psycopg", "")]),
        Case("design --dir URL", ["design", str(spec), "--dir", URL]),
        Case("status sqlite missing", ["study", "status", str(spec), "--storage", f"sqlite:///{root}/none.db"]),
        Case("sample --seed -1", ["sample", "regnetx", "-n", "2", "--seed", "-1"]),
        Case("sample --resolution 1e9", ["sample", "regnetx", "-n", "2", "--resolution", "1000000000"]),
        Case("sample -n 1e9", ["sample", "regnetx", "-n", "1000000000"]),
        Case("describe --regnet repeated key", ["describe", "--regnet", "depth=13,depth=14,w0=24,wa=36,wm=2.5,group_width=8"]),
        Case("describe --regnet wm 0.5", ["describe", "--regnet", "depth=13,w0=24,wa=36,wm=0.5,group_width=8"]),
        Case("profile --batch-size 1e6", ["profile", "regnetx_002", "--batch-size", "1000000"]),
        Case("train --batch-size 1e7", ["train", "regnetx_002", "--dataset", "synthetic", "--batch-size", "10000000"]),
        Case("edf --bins 1e9", ["edf", good, "--normalize", "flops", "--bins", "1000000000"]),
        Case("export onnx too big", ["export", str(Path(root / "models" / "width-1e9.json")).replace("width-1e9", "big"),
                                     "--format", "onnx", "--out", f"{out}/big.onnx"], f"{out}/big.onnx"),
    ]
    _write(root / "models", "big.json", json.dumps({"stages": [{"depth": 40, "width": 65536}] * 2}))
    return cases, study, victim


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` by content (links by target, FIFOs and folders by kind)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_symlink():
            found[str(path)] = "link:" + os.readlink(path)
        elif path.is_fifo() or path.is_dir():
            found[str(path)] = "fifo" if path.is_fifo() else "dir"
        else:
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_case(case: Case, logs: Path, timeout: float) -> tuple[int | None, str, float]:
    """(exit code or None on a hang, stdout + stderr, seconds), the case run in a forked child."""
    out = logs / "case.out"
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: the command, its streams in a file
        code = 1
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            from regnet_space.cli import main

            code = main(case.argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # main turns everything else into a line and a code; anything left is a bug
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    while time.monotonic() - start < timeout:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), out.read_text(errors="replace"), time.monotonic() - start
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None, out.read_text(errors="replace"), time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a hang")
    parser.add_argument("--only", help="run only the cases whose name holds this text")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch  # noqa: F401  (imported once here, so each forked case starts warm)

    import regnet_space.cli  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        root = Path(scratch) / "sandbox"
        cases, study, victim = build(root)
        cases = [c for c in cases if not args.only or args.only in c.name]
        if args.list:
            print("\n".join(c.name for c in cases))
            return 0
        logs = Path(scratch) / "logs"
        logs.mkdir()
        study_before = digest(study)
        tally = {"clean": 0, "traceback": 0, "other exit": 0, "hang": 0, "writes outside": 0, "secret printed": 0}
        problems = []
        for case in cases:
            before = digest(root)
            code, text, seconds = run_case(case, logs, args.timeout)
            after = digest(root)
            changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p)
                             and p != case.output and not (case.output and p == str(Path(case.output).parent)))
            lines = [line for line in text.strip().splitlines() if line.strip()]
            if code is None:
                outcome = "hang"
            elif "Traceback" in text:
                outcome = "traceback"
            elif code == 2 and lines and (lines[-1].startswith("regnet-space: error: ") or "usage:" in text):
                outcome = "clean"
            else:
                outcome = "other exit"
            tally[outcome] += 1
            tally["writes outside"] += bool(changed)
            tally["secret printed"] += SECRET in text or "Qc0rpus" in text
            if outcome != "clean" or changed or "Qc0rpus" in text:
                problems.append(f"{case.name}: {outcome} (exit {code}, {seconds:.1f} s)"
                                + (f"; changed {changed[:3]}" if changed else "")
                                + (f"; last line: {lines[-1][:160]}" if lines else ""))
        identical = digest(study) == study_before and victim.read_text() == "precious\n"
        print(f"{len(cases)} hostile inputs: " + ", ".join(f"{v} {k}" for k, v in tally.items())
              + f"; study under attack {'byte-identical' if identical else 'CHANGED'}")
        for line in problems:
            print("  " + line)
        bad = tally["traceback"] + tally["other exit"] + tally["hang"] + tally["writes outside"] + tally["secret printed"]
        return 0 if not bad and identical else 1


if __name__ == "__main__":
    sys.exit(main())

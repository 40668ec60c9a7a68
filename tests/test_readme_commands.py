"""Every command of the README's CLI reference, of docs/*.md and of experiments/README.md runs and exits 0, so
the docs cannot drift from the tool.

The commands run as written, in a scratch directory laid out like the repository, with the few substitutions a
test needs to be quick and self-contained (listed in SUBSTITUTIONS): the study spec at
experiments/quickstart.toml is the smoke study (synthetic 8x8 data, 20 models per space) under the quickstart's
name, training uses
synthetic data, and measurements are shortened.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from study_helpers import DESIGN_SPEC

ROOT = Path(__file__).resolve().parent.parent
SYNTHETIC = "synthetic:res=8,train=256,test=64"
SUBSTITUTIONS = [
    ("--dataset fashion-mnist", f"--dataset {SYNTHETIC}"),
    ("--epochs 10", f"--epochs 1 --dataset {SYNTHETIC}"),
    ("--threads 1", "--threads 1 --resolution 32 --warmup 0 --repeats 1"),  # latency of 224 px models is slow
    ("--storage URL", "--dir runs/quickstart"),  # the placeholder: join the local study instead
    ("-n 100 --flops 360M:400M", "-n 10 --flops 360M:400M"),
]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## CLI reference"):]
    block = block[:block.index("\n## ", 3)]
    commands = []
    for line in block.splitlines():
        if not line.startswith("regnet-space "):
            continue
        line = re.sub(r"\s+#.*$", "", line)  # the comment
        line = re.sub(r"\s*\[[^\]]*\]", "", line)  # optional arguments shown as [--json]
        commands.append(line.strip())
    return commands


DOCS = ["docs/*.md", "experiments/README.md"]


def doc_commands() -> list[str]:
    """The commands shown in docs/*.md and experiments/README.md (indented or fenced lines that start with
    ``regnet-space``; a trailing backslash continues a line)."""
    commands = []
    for path in sorted(p for pattern in DOCS for p in ROOT.glob(pattern)):
        pending = ""
        for line in path.read_text().splitlines():
            line = pending + line.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            if line.startswith("regnet-space "):
                commands.append(re.sub(r"\s+#.*$", "", line).strip())
    return commands


def _published_files(root: Path) -> None:
    """Stand-ins for the published populations docs/imports.md names: two pycls sweeps and two NDS files."""
    import json

    for name in ("A", "B"):
        jobs = [{"cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10},
                         "ANYNET": {"DEPTHS": [1, 1 + i % 2], "WIDTHS": [8, 16], "STRIDES": [2, 2], "STEM_W": 8,
                                    "BLOCK_TYPE": "res_bottleneck_block", "STEM_TYPE": "simple_stem_in",
                                    "BOT_MULS": [1, 1], "GROUP_WS": [8, 8]}},
                 "complexity": {"flops": 1e6 * (1 + i), "params": 1e4 * (1 + i), "acts": 1e4},
                 "test_epoch": {"min_top1_err": [30.0 + i + (name == "B")], "epoch_ind": [1], "epoch_max": [1]}}
                for i in range(20)]
        (root / name).mkdir()
        (root / name / "sweep.json").write_text(json.dumps(jobs))
        nds = [{"min_test_top1": 30.0 + i + (name == "B"), "flops": 1e6 * (1 + i), "params": 1e4 * (1 + i)}
               for i in range(20)]
        (root / f"ResNeXt-{name}.json").write_text(json.dumps(nds))


def test_the_docs_show_commands():
    assert len(doc_commands()) >= 5, doc_commands()


def test_the_reference_lists_every_command():
    from regnet_space.commands import COMMANDS

    named = {shlex.split(c)[1] for c in readme_commands()}
    assert named == set(COMMANDS), set(COMMANDS) ^ named


@pytest.mark.slow  # trains the smoke study and runs ~25 commands: a few minutes on 2 shared cores
def test_every_readme_command_runs(tmp_path):
    # refine needs 20 models of a space: the smoke study with 20 per space and one epoch.
    spec = ((ROOT / "experiments" / "smoke.toml").read_text().replace('name = "smoke"', 'name = "quickstart"')
            .replace("n = 6", "n = 20").replace("epochs = 2", "epochs = 1"))
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quickstart.toml").write_text(spec)
    shutil.copytree(ROOT / "experiments" / "spaces", tmp_path / "experiments" / "spaces")
    # the README's design command: the tests' one-population design under the README's file name
    (tmp_path / "experiments" / "design_fashion_mnist.toml").write_text(
        DESIGN_SPEC.format(name="design_fashion_mnist").replace("rounds = 1", "rounds = 0"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def run(command: str) -> None:
        for old, new in SUBSTITUTIONS:
            command = command.replace(old, new)
        argv = [sys.executable, "-m", "regnet_space", *shlex.split(command)[1:]]
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"`{command}` failed:\n{result.stderr[-3000:]}"

    # Issue 24, item 15: the docs' commands too, from a clean clone: those that need no study run first, while
    # there is no runs/ folder yet (an output's missing folders are created).
    _published_files(tmp_path)
    assert not (tmp_path / "runs").exists()
    docs = doc_commands()
    for command in docs:
        if "runs/quickstart" not in command:
            run(command)
    # What later commands read (the study, best.json) is made first, with the README's own commands.
    commands = readme_commands()
    first = [c for c in commands if c.startswith(("regnet-space study run", "regnet-space best"))]
    for command in first + commands + [c for c in docs if "runs/quickstart" in c]:
        run(command)
    for made in ("runs/quickstart/results.csv", "runs/quickstart/edf.png", "runs/quickstart/edf_norm.png",
                 "runs/quickstart/report.html", "runs/quickstart/best.json", "runs/narrowed.toml",
                 "runs/samples.jsonl", "runs/regnetx_1.6G.json", "runs/regnetx_1.6G.yaml", "runs/regnetx_002.onnx"):
        assert (tmp_path / made).stat().st_size > 0, made

"""Every command of the README's CLI reference runs and exits 0, so the README cannot drift from the tool.

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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def run(command: str) -> None:
        for old, new in SUBSTITUTIONS:
            command = command.replace(old, new)
        argv = [sys.executable, "-m", "regnet_space", *shlex.split(command)[1:]]
        result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"`{command}` failed:\n{result.stderr[-3000:]}"

    # What later commands read (the study, best.json) is made first, with the README's own commands.
    commands = readme_commands()
    first = [c for c in commands if c.startswith(("regnet-space study run", "regnet-space best"))]
    for command in first + commands:
        run(command)
    for made in ("runs/quickstart/results.csv", "runs/quickstart/edf.png", "runs/quickstart/edf_norm.png",
                 "runs/quickstart/report.html", "runs/quickstart/best.json", "runs/narrowed.toml",
                 "runs/samples.jsonl", "runs/regnetx_1.6G.json", "runs/regnetx_1.6G.yaml", "runs/regnetx_002.onnx"):
        assert (tmp_path / made).stat().st_size > 0, made

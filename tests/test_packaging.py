"""The package as a newcomer gets it: a wheel with its licence, types marker and the demo's study spec, the
version flags, and (slow) a fresh virtual environment that installs the wheel and runs the demo's commands."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import regnet_space
from study_helpers import synthetic_study

ROOT = Path(__file__).resolve().parent.parent


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH, so the installed package is the one imported."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), "-q"], check=True, capture_output=True, timeout=300, cwd=out)
    (path,) = out.glob("regnet_space-*.whl")
    return path


def test_wheel_ships_licence_types_spaces_and_demo_spec(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for member in ("regnet_space/py.typed", "regnet_space/__main__.py", "regnet_space/experiments/quickstart.toml",
                   "regnet_space/spaces/builtin/regnetx.toml"):
        assert member in names, member
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert f"Version: {regnet_space.__version__}" in metadata
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "Project-URL:" in metadata
    assert any(line.startswith("Requires-Dist: psycopg") and 'extra == "test"' in line
               for line in metadata.splitlines())


def test_version_flag_and_python_dash_m():
    for argv in (["-m", "regnet_space", "--version"], ["-m", "regnet_space.cli", "--version"]):
        result = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"regnet-space {regnet_space.__version__}"


def _subcommand_paths(parser=None, prefix=()):
    """Every command path of the CLI (``("study", "run")`` ...), found from the parser itself."""
    import argparse

    from regnet_space.cli import make_parser

    parser = parser or make_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _subcommand_paths(sub, prefix + (name,))


@pytest.mark.parametrize("path", list(_subcommand_paths()), ids=" ".join)
def test_every_command_prints_its_help(path, capsys):
    # argparse formats help with %-interpolation: a bare "%" in a help string crashes --help.
    from regnet_space.cli import main

    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: regnet-space " + " ".join(path))


def test_demo_spec_is_the_one_experiments_links_to():
    from regnet_space.demo import SPEC

    assert SPEC.is_relative_to(Path(regnet_space.__file__).parent)
    assert (ROOT / "experiments" / "quickstart.toml").resolve() == SPEC.resolve()


SMOKE = synthetic_study("wheel", n=3, spaces=("anynetx_a", "regnetx"), input_form=None, measure_latency=None)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_commands(wheel, tmp_path):
    """No system site-packages: PyTorch and every dependency come from the package index, as for a user."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    python, script = env_dir / "bin" / "python", env_dir / "bin" / "regnet-space"
    env = _clean_env()

    def run(*argv, timeout=1800):
        result = subprocess.run([str(a) for a in argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"{argv}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        return result.stdout

    run(python, "-m", "pip", "install", "-q", "torch==2.13.0")
    run(python, "-m", "pip", "install", "-q", wheel)
    assert run(script, "--version").strip() == f"regnet-space {regnet_space.__version__}"
    assert run(python, "-m", "regnet_space", "--version").strip() == f"regnet-space {regnet_space.__version__}"
    # The demo's own spec is found inside the installed package and names the demo's 48 models.
    total = run(python, "-c", "from regnet_space.demo import SPEC; from regnet_space.study.spec import "
                "load_study_spec; print(SPEC); print(load_study_spec(str(SPEC)).total)").split()
    assert "site-packages" in total[0] and total[1] == "48"
    # The demo's commands on a study small enough for a test.
    spec = tmp_path / "wheel.toml"
    spec.write_text(SMOKE)
    out = tmp_path / "runs" / "wheel"
    run(script, "study", "run", spec, "--workers", "1", "--dir", out)
    run(script, "study", "export", spec, "--dir", out, "--out", out / "results.csv")
    run(script, "edf", spec, "--dir", out, "--plot", out / "edf.png")
    run(script, "report", spec, "--dir", out, "--out", out / "report.html")
    run(script, "best", spec, "--dir", out, "--out", out / "best.json")
    assert run(script, "describe", out / "best.json").strip()
    for name in ("results.csv", "edf.png", "report.html", "best.json"):
        assert (out / name).stat().st_size > 0, name

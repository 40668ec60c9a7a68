"""Parameter importances per design space: each space's models in a study of their own, so Optuna's evaluators
rank that space's parameters on that space's models."""

import json
from pathlib import Path

import pytest

from regnet_space.analysis import table
from regnet_space.analysis.importance import importances
from regnet_space.cli import main
from regnet_space.spaces import load_space

ROOT = Path(__file__).parent.parent
PROGRESSION = ROOT / "analysis" / "anynet_progression" / "results.csv"  # a study that was run (240 models)


def test_every_space_of_a_real_study_gets_non_degenerate_importances():
    frame, _ = table.load(str(PROGRESSION))
    labels = sorted(frame["space"].unique())
    result = importances(frame, {label: load_space(label) for label in labels})
    assert list(result) == labels
    for label, ranked in result.items():
        sampled = 5 if label == "regnetx" else 16  # RegNetX: depth, w0, wa, wm, g; AnyNetX: d, w, b, g per stage
        assert len(ranked) == sampled and abs(sum(ranked.values()) - 1) < 1e-6, label
        assert max(ranked.values()) > 2 * min(ranked.values()) and max(ranked.values()) >= 0.1, (label, ranked)


def test_the_command_prints_each_space_and_refuses_what_it_cannot_do(capsys):
    assert main(["importances", str(PROGRESSION), "--space", "regnetx", "--space", "anynetx_e", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"regnetx", "anynetx_e"} and set(result["regnetx"]) == {"depth", "w0", "wa", "wm",
                                                                                  "group_width"}
    assert main(["importances", str(PROGRESSION), "--space", "nope"]) == 2
    assert "no models of that space" in capsys.readouterr().err
    try:
        import sklearn  # noqa: F401
    except ImportError:
        assert main(["importances", str(PROGRESSION), "--evaluator", "fanova"]) == 2
        assert "needs scikit-learn" in capsys.readouterr().err


@pytest.mark.slow
def test_importances_of_a_study_run_here(tmp_path):
    """End to end on a study's own storage: 8 models per space trained on synthetic data (about 2 minutes)."""
    from study_helpers import cli, synthetic_study

    spec = tmp_path / "imp.toml"
    spec.write_text(synthetic_study("imp", n=8))
    assert cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--quiet").returncode == 0
    out = cli("importances", str(spec), "--dir", str(tmp_path / "run"), "--json")
    result = json.loads(out.stdout)
    assert set(result) == {"regnetx", "anynetx_e"} and all(len(r) >= 5 for r in result.values())

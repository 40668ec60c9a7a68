"""`regnet-space refine`: bootstrap ranges and data-supported constraints, written as a space `sample` accepts."""

import numpy as np
import pandas as pd

from analysis_tables import anynet_rows, regnet_rows
from regnet_space.analysis.refine import narrow, refine
from regnet_space.cli import main
from regnet_space.spaces import load_space, sample_models
from regnet_space.spaces.distributions import parse_distribution


def test_narrow_snaps_outward_to_the_support():
    width = parse_distribution({"dist": "log_uniform", "lo": 8, "hi": 1024, "q": 8}, "w", int)
    narrowed = narrow(width, 30.0, 100.0, int, "w")
    assert (narrowed.kind, narrowed.lo, narrowed.hi, narrowed.q) == ("log_uniform", 24, 104, 8)
    group = parse_distribution({"dist": "power2", "lo": 1, "hi": 32}, "g", int)
    assert narrow(group, 3, 5, int, "g").values.tolist() == [2, 4, 8]
    assert narrow(group, 4, 4, int, "g") == 4  # one value left: a fixed value
    assert narrow(7, 1, 2, int, "x") == 7  # fixed values stay


def _strong_monotone_table(n=160, seed=0):
    """AnyNet models whose error drops sharply when widths never shrink."""
    frame = pd.DataFrame(anynet_rows(n, seed))
    widths = frame[["w1", "w2", "w3", "w4"]].to_numpy()
    frame["error"] = frame["error"] - 6.0 * np.all(np.diff(widths, axis=1) >= 0, axis=1)
    return frame


def test_anynet_refinement(tmp_path, capsys):
    frame = _strong_monotone_table()
    path = tmp_path / "results.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "narrowed.toml"
    code = main(["refine", str(path), "--space", "anynetx_a", "--out", str(out), "--samples", "2000"])
    printed = capsys.readouterr().out
    assert code == 0
    space = load_space(str(out))
    assert space.name == "anynetx_a_refined" and space.num_stages == 4
    assert "width" in space.monotone and "monotone width:" in printed
    assert set(space.shared) <= {"bottleneck_ratio", "group_width"}
    original = load_space("anynetx_a")
    assert space.size() < original.size()
    for i in range(4):  # every stage's width range lies inside the original and holds the best model's width
        w = space.stage_value(i, "width")
        best = frame.sort_values("error").iloc[0][f"w{i + 1}"]
        lo, hi = (w.lo, w.hi) if hasattr(w, "lo") else (w, w)
        assert 8 <= lo <= best <= hi <= 1024 and (lo, hi) != (8, 1024)
    text = out.read_text()
    assert text.startswith("# good ranges: 95% interval")
    models = sample_models(space, 5, seed=0, resolution=28, in_channels=1, num_classes=10)
    assert len(models) == 5
    assert all(m.spec.widths == sorted(m.spec.widths) for m in models)


def test_regnet_refinement_narrows_wm_toward_the_truth():
    frame = pd.DataFrame(regnet_rows(150, seed=2))  # the error rule is best at wm = 2.5
    result = refine(load_space("regnetx"), frame, samples=2000)
    wm = result.space.regnet["wm"]
    assert 2.0 <= wm.lo < 2.5 < wm.hi <= 3.0 and wm.hi - wm.lo < 0.95
    assert result.space.regnet_stages == (4, 4) and result.space.is_regnet
    assert any(line.startswith("wm: good range") for line in result.rationale)
    assert len(sample_models(result.space, 3, seed=1, resolution=28, in_channels=1, num_classes=10)) == 3


def test_refine_errors(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame(regnet_rows(4, seed=0)).to_csv(path, index=False)
    assert main(["refine", str(path), "--space", "regnetx", "--out", str(tmp_path / "o.toml")]) == 2
    assert "needs at least 10 models" in capsys.readouterr().err
    assert main(["refine", str(path), "--space", "anynetx_a", "--out", str(tmp_path / "o.toml")]) == 2
    assert "no models of that space" in capsys.readouterr().err

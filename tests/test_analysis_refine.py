"""`regnet-space refine`: permutation-tested decisions (calibrated on noise, recovering planted structure),
composed into a space that `sample` accepts."""

import numpy as np
import pandas as pd
import pytest

from analysis_tables import anynet_rows, regnet_rows
from regnet_space.analysis.calibration import parameter_table, recovered
from regnet_space.analysis.refine import Decision, apply, inside_models, narrow, propose, refine
from regnet_space.cli import main
from regnet_space.errors import UserError
from regnet_space.spaces import load_space, sample_models
from regnet_space.spaces.distributions import parse_distribution

SMALL = {"resolution": 28, "in_channels": 1, "num_classes": 10}


def test_narrow_snaps_outward_to_the_support():
    width = parse_distribution({"dist": "log_uniform", "lo": 8, "hi": 1024, "q": 8}, "w", int)
    narrowed = narrow(width, 30.0, 100.0, int, "w")
    assert (narrowed.kind, narrowed.lo, narrowed.hi, narrowed.q) == ("log_uniform", 24, 104, 8)
    group = parse_distribution({"dist": "power2", "lo": 1, "hi": 32}, "g", int)
    assert narrow(group, 3, 5, int, "g").values.tolist() == [2, 4, 8]
    assert narrow(group, 4, 4, int, "g") == 4  # one value left: a fixed value
    assert narrow(group, -np.inf, 2, int, "g").values.tolist() == [1, 2]
    assert narrow(7, 1, 2, int, "x") == 7  # fixed values stay


def test_a_perfect_separation_gets_the_smallest_p():
    """Models with b1 = 1 are all better than the rest: the permutation p of narrowing b1 is 1/(P+1)."""
    space = load_space("anynetx_a")
    frame = parameter_table(space, 120, np.random.default_rng(0))
    frame["error"] = 20 + frame["error"] / 100 + 5 * (frame["b1"] != 1)
    decisions = {(d.kind, d.column): d for d in propose(space, frame, permutations=400, seed=1)}
    b1 = decisions[("narrow", "b1")]
    assert b1.value == (1.0, 1.0) and b1.p_value == pytest.approx(1 / 401) and b1.taken
    assert "p=0.00249" in b1.why and "Holm p=" in b1.why


def test_noise_takes_nothing_and_single_p_values_are_uniform():
    """Fast calibration (the full one, 500 tables, is analysis/calibration/run.py): 40 noise tables.

    Per candidate the raw p <= 0.05 should happen 5% of the time (800 p-values, correlated within a table:
    accept 2.5-9%); a table takes any decision at most alpha of the time (expected <= 2 of 40; 7+ has
    probability < 0.5% if the true rate were 5%)."""
    space = load_space("anynetx_a")
    raw, tables_with_taken, candidates = 0, 0, 0
    for seed in range(40):
        decisions = propose(space, parameter_table(space, 200, np.random.default_rng(seed)), permutations=1000,
                            seed=seed)
        raw += sum(d.p_value <= 0.05 for d in decisions)
        candidates += len(decisions)
        tables_with_taken += any(d.taken for d in decisions)
    assert 0.025 <= raw / candidates <= 0.09
    assert tables_with_taken <= 6


def test_planted_structure_is_recovered():
    """Fast recovery check: 8 tables of 500 models with b = 1, g in 4..16 and non-decreasing widths planted
    (the full rates are in analysis/calibration/results.json)."""
    space = load_space("anynetx_a")
    found = [recovered(refine(space, parameter_table(space, 500, np.random.default_rng(100 + s), planted=True),
                              permutations=1000, seed=s).space) for s in range(8)]
    assert sum(f["b_1"] for f in found) >= 7
    assert sum(f["g_4_16"] for f in found) >= 7
    assert sum(f["width_monotone"] for f in found) >= 7
    assert sum(f["depth_narrowed"] for f in found) <= 1


def test_apply_composes_decisions_into_a_valid_space():
    space = load_space("anynetx_a")
    decisions = [Decision("share", "bottleneck_ratio", None, 1.0, 0.001, 0.01, True, "b"),
                 Decision("narrow", "group_width", None, (4, 16), 0.001, 0.01, True, "g"),
                 Decision("narrow", "depth", "d3", (2, 5), 0.001, 0.01, True, "d3"),
                 Decision("monotone", "width", None, None, 0.001, 0.01, False, "w")]
    refined = apply(space, decisions)
    assert refined.shared == () and refined.monotone == ("width",)  # b = 1 everywhere needs no `shared`
    assert refined.stage["bottleneck_ratio"] == 1.0
    assert refined.stage["group_width"].values.tolist() == [4, 8, 16]
    d3 = refined.stage_value(2, "depth")
    assert (d3.lo, d3.hi) == (2, 5) and refined.stage_value(0, "depth") == space.stage_value(0, "depth")
    assert refined.size() < space.size()
    models = sample_models(refined, 4, seed=0, **SMALL)
    assert all(m.spec.widths == sorted(m.spec.widths) for m in models)
    assert all(s.bottleneck_ratio == 1.0 for m in models for s in m.spec.stages)
    assert apply(space, []) == space
    with pytest.raises(UserError, match="not a stage column"):
        apply(space, [Decision("narrow", "depth", "w3", (2, 5), 0.0, 0.0, True, "")])
    # Narrowing a shared field to one value: fixed in every stage (and sampleable)
    b_fixed = apply(load_space("anynetx_b"), [Decision("narrow", "bottleneck_ratio", None, (1, 1), 0, 0, True, "")])
    assert b_fixed.stage["bottleneck_ratio"] == 1.0 and "bottleneck_ratio" not in b_fixed.shared
    assert len(sample_models(b_fixed, 2, seed=0, **SMALL)) == 2
    regnet = apply(load_space("regnetx"), [Decision("narrow", "wm", None, (2.2, 2.7), 0.0, 0.0, True, "")])
    assert (regnet.regnet["wm"].lo, regnet.regnet["wm"].hi) == (2.2, 2.7)
    with pytest.raises(UserError, match="only narrowings"):
        apply(load_space("regnetx"), [Decision("monotone", "width", None, None, 0.0, 0.0, True, "")])


def test_anynet_refinement_cli(tmp_path, capsys):
    frame = pd.DataFrame(anynet_rows(160, 0))
    widths = frame[["w1", "w2", "w3", "w4"]].to_numpy()
    frame["error"] = frame["error"] - 6.0 * np.all(np.diff(widths, axis=1) >= 0, axis=1)
    path = tmp_path / "results.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "narrowed.toml"
    code = main(["refine", str(path), "--space", "anynetx_a", "--out", str(out), "--permutations", "500"])
    printed = capsys.readouterr().out
    assert code == 0
    space = load_space(str(out))
    assert space.name == "anynetx_a_refined" and "width" in space.monotone
    assert "non-decreasing width" in printed and "-> taken" in printed and "Holm p=" in printed
    assert out.read_text().startswith("# ") and "candidate decisions from 160 models" in out.read_text()
    assert len(sample_models(space, 3, seed=0, **SMALL)) == 3


def test_regnet_refinement_narrows_wm_toward_the_truth():
    frame = pd.DataFrame(regnet_rows(150, seed=2))  # the error rule is best at wm = 2.5
    result = refine(load_space("regnetx"), frame, permutations=500)
    wm = result.space.regnet["wm"]
    assert 2.0 <= wm.lo < 2.5 < wm.hi <= 3.0 and wm.hi - wm.lo < 0.95
    assert result.space.is_regnet and any(d.field == "wm" and d.taken for d in result.decisions)
    assert len(sample_models(result.space, 3, seed=1, **SMALL)) == 3


def test_refine_errors(tmp_path, capsys):
    path = tmp_path / "r.csv"
    pd.DataFrame(regnet_rows(4, seed=0)).to_csv(path, index=False)
    assert main(["refine", str(path), "--space", "regnetx", "--out", str(tmp_path / "o.toml")]) == 2
    assert "needs at least 20 models" in capsys.readouterr().err
    assert main(["refine", str(path), "--space", "anynetx_a", "--out", str(tmp_path / "o.toml")]) == 2
    assert "no models of that space" in capsys.readouterr().err


def test_inside_models_checks_spans_and_monotone():
    space = apply(load_space("anynetx_a"), [Decision("narrow", "depth", "d1", (2, 4), 0, 0, True, ""),
                                            Decision("share", "bottleneck_ratio", None, 1.0, 0, 0, True, ""),
                                            Decision("monotone", "width", None, None, 0, 0, True, "")])
    frame = pd.DataFrame({"d1": [3, 3, 5, 3], "d2": 1, "d3": 1, "d4": 1, "b1": [1, 1, 1, 2], "b2": 1, "b3": 1,
                          "b4": 1, "w1": [8, 64, 8, 8], "w2": 16, "w3": 32, "w4": 64, "g1": 1, "g2": 1, "g3": 1,
                          "g4": 1, "error": 1.0})
    assert inside_models(space, frame).tolist() == [True, False, False, False]  # w shrinks; d1 = 5; b1 = 2


def test_decisions_hold_flops_equal_inside_a_window():
    """Inside a 200-800 MFLOPs window, with error a function of flops alone (30 - 3 log2(flops / 400M) + small
    noise), every decision is false: it could only move models up the window. Held at equal flops, refine takes
    one in at most 3 of 20 tables (nominal 1); without the complexity term it takes them in several (6 of 20 when
    written). The full rates, 500 tables per condition, are in analysis/calibration/."""
    from regnet_space.analysis.calibration import false_decisions, window_table

    space = load_space("anynetx_a")
    held = ignored = 0
    for seed in range(20):
        frame = window_table(space, 100, 900 + seed, effect="none")
        frame["error"] = 30 - 3 * np.log2(frame["flops"] / 4e8) + np.random.default_rng(seed).normal(0, 0.3, 100)
        held += bool(false_decisions(propose(space, frame, permutations=400, seed=seed), "flops"))
        ignored += bool(false_decisions(propose(space, frame, permutations=400, seed=seed, complexity=None), "flops"))
    assert held <= 3 and ignored >= 3


def test_nan_errors_are_left_out_with_a_warning():
    space = load_space("anynetx_a")
    frame = parameter_table(space, 60, np.random.default_rng(0))
    frame.loc[:4, "error"] = np.nan
    with pytest.warns(RuntimeWarning, match=r"5 models have no error \(NaN\) and are left out of refine"):
        decisions = propose(space, frame, permutations=50)
    assert decisions and all(np.isfinite(d.p_value) for d in decisions)

"""EDFs, normalised EDFs, bands, KS tests and best-of-k against hand-computed cases and scipy."""

import argparse
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regnet_space.analysis.edf import Binning, compare, dkw_halfwidth, edf, ks_test, normalised_weights
from regnet_space.cli import main
from regnet_space.errors import UserError


def test_plain_edf_is_right_continuous_at_every_distinct_error():
    e = edf(np.array([3.0, 1.0, 2.0, 2.0]))
    assert e.errors.tolist() == [1.0, 2.0, 3.0]
    assert e.cdf.tolist() == [0.25, 0.75, 1.0]  # F(2) counts both models at 2 (<=)
    assert (e.n, e.n_eff, e.min_error, e.mean_error) == (4, 4.0, 1.0, 2.0)


def test_weighted_edf_and_effective_n():
    e = edf(np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 1.0]))
    assert np.allclose(e.cdf, [0.5, 0.75, 1.0])
    assert e.mean_error == pytest.approx(1.75)
    assert e.n_eff == pytest.approx(1 / (0.25 + 0.0625 + 0.0625))  # Kish: 2.667


def test_dkw_band():
    assert dkw_halfwidth(100) == pytest.approx(np.sqrt(np.log(40) / 200))  # 0.1358
    lower, upper = edf(np.arange(100.0)).band()
    assert lower[0] == 0 and upper[-1] == 1 and upper[0] == pytest.approx(0.01 + 0.13581, abs=1e-4)


def test_normalised_weights_nds_case():
    # 2 bins over [0, 10]: three models in bin 0, one in bin 1 -> weights 1/(2*3) and 1/(2*1).
    binning = Binning(0.0, 10.0, 2)
    bins = binning.assign(np.array([1.0, 2.0, 4.0, 10.0, 11.0]))
    assert bins.tolist() == [0, 0, 0, 1, -1]  # the upper end is inside, beyond it is dropped
    weights = normalised_weights(bins[bins >= 0], 2)
    assert np.allclose(weights, [1 / 6, 1 / 6, 1 / 6, 1 / 2]) and weights.sum() == pytest.approx(1)


def _frame():
    return pd.DataFrame({
        "space": ["a"] * 4 + ["b"] * 3,
        "error": [10.0, 20.0, 30.0, 40.0, 15.0, 25.0, 35.0],
        "flops": [1.0, 2.0, 3.0, 9.0, 2.0, 6.0, 8.0],
    })


def test_compare_normalised_hand_case():
    # Shared range [2, 8] (a spans 1..9, b 2..8), bins [2, 5) and [5, 8]: a has no model in the second.
    with pytest.raises(UserError, match=r"group 'a': no models with flops in bin 2/2 \[5, 8\]"):
        compare(_frame(), normalize="flops", bins=2, permutations=10)
    frame = _frame()
    frame.loc[3, "flops"] = 7.0  # a spans 1..7: shared range [2, 7], bins [2, 4.5) and [4.5, 7]
    result = compare(frame, normalize="flops", bins=2, permutations=200)
    assert (result.binning.lo, result.binning.hi) == (2.0, 7.0)
    assert result.dropped == {"a": 1, "b": 1}  # a's flops 1 and b's flops 8 are outside
    a, b = result.edfs["a"], result.edfs["b"]
    assert a.errors.tolist() == [20.0, 30.0, 40.0] and np.allclose(a.cdf, [0.25, 0.5, 1.0])
    assert b.errors.tolist() == [15.0, 25.0] and np.allclose(b.cdf, [0.5, 1.0])
    assert a.mean_error == pytest.approx(0.25 * 20 + 0.25 * 30 + 0.5 * 40)


def test_plain_ks_is_scipys():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, 50), rng.normal(0.5, 1, 70)
    ours = ks_test(x, y)
    ref = stats.ks_2samp(x, y)
    assert (ours["statistic"], ours["pvalue"]) == (ref.statistic, ref.pvalue)


def test_weighted_ks_with_one_bin_matches_scipy_statistic_and_pvalue():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 40), rng.normal(0.8, 1, 40)
    ours = ks_test(x, y, np.zeros(40, int), np.zeros(40, int), 1, permutations=2000, seed=0)
    ref = stats.ks_2samp(x, y)
    assert ours["statistic"] == pytest.approx(ref.statistic)
    assert ours["pvalue"] == pytest.approx(ref.pvalue, abs=0.01)  # permutation vs exact, p ~ 0.002


def test_weighted_ks_same_distribution_is_not_significant():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 60), rng.normal(0, 1, 60)
    bins_x, bins_y = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
    result = ks_test(x, y, bins_x, bins_y, 3, permutations=500, seed=0)
    assert result["pvalue"] > 0.05
    assert ks_test(x, y + 2, bins_x, bins_y, 3, permutations=500, seed=0)["pvalue"] < 0.01


def test_expected_best_of_k_hand_case():
    e = edf(np.array([1.0, 2.0, 3.0]))
    # k=1: the mean; k=2: P(min=1)=5/9, P(min=2)=3/9, P(min=3)=1/9; k large: the minimum.
    assert np.allclose(e.expected_best(np.array([1, 2, 200])), [2.0, 14 / 9, 1.0])
    rng = np.random.default_rng(0)
    draws = rng.choice([1.0, 2.0, 3.0], size=(100_000, 2)).min(axis=1)
    assert draws.mean() == pytest.approx(14 / 9, abs=0.01)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_edf_cli_json(tmp_path, capsys):
    path = tmp_path / "results.csv"
    frame = _frame().assign(params=1, acts=1)
    frame.to_csv(path, index=False)
    code, out, _ = _run(capsys, "edf", str(path), "--json", "--plot", str(tmp_path / "edf.svg"))
    data = json.loads(out)
    assert code == 0
    assert data["groups"]["a"]["edf"] == [[10.0, 0.25], [20.0, 0.5], [30.0, 0.75], [40.0, 1.0]]
    assert data["groups"]["b"]["n"] == 3 and data["groups"]["b"]["min_error"] == 15.0
    assert data["groups"]["a"]["expected_best"][0] == 25.0 and len(data["groups"]["a"]["expected_best"]) == 4
    ref = stats.ks_2samp([10, 20, 30, 40], [15, 25, 35])
    assert data["ks"][0]["statistic"] == ref.statistic and data["ks"][0]["pvalue"] == ref.pvalue
    assert data["ks"][0]["p_holm"] == ref.pvalue and data["multiple_comparisons"]["family"] == 1
    assert data["ks"][0]["mean_diff"] == pytest.approx(25 - 25) and len(data["ks"][0]["mean_diff_ci"]) == 2
    code, out, _ = _run(capsys, "edf", str(path))
    assert "p_holm: Holm-adjusted over the 1 pairwise comparisons" in out and "mean_diff=+0.00 [" in out
    assert (tmp_path / "edf.svg").read_text().startswith("<?xml")
    code, out, _ = _run(capsys, "edf", str(path), "--normalize", "flops", "--bins", "2", "--range", "0:10",
                        "--permutations", "50", "--json")
    data = json.loads(out)
    assert data["normalize"] == {"metric": "flops", "bins": 2, "range": [0.0, 10.0]}
    assert data["groups"]["a"]["n"] == 4 and data["ks"][0]["method"].startswith("permutation")


@pytest.mark.parametrize("drop, message", [("flops", "missing column 'flops'"), ("space", "missing column 'space'")])
def test_missing_column_exits_2(tmp_path, capsys, drop, message):
    path = tmp_path / "results.csv"
    _frame().assign(params=1, acts=1).drop(columns=[drop]).to_csv(path, index=False)
    code, out, err = _run(capsys, "edf", str(path))
    assert code == 2 and message in err and "Traceback" not in err


def test_bad_values_are_named(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    frame = _frame().assign(params=1, acts=1)
    frame.loc[2, "error"] = 130.0
    frame.to_json(path, orient="records", lines=True)
    code, _, err = _run(capsys, "edf", str(path))
    assert code == 2 and "row 2: error=130 is not a top-1 error in %" in err


def test_edf_range_takes_complexity_suffixes():
    from regnet_space.commands.edf import value_range

    assert value_range("5M:20M") == (5e6, 20e6)
    assert value_range("0:10") == (0.0, 10.0)
    for bad in ("5M:", ":20M", "20M:5M", "five:ten", "10"):
        with pytest.raises(argparse.ArgumentTypeError):
            value_range(bad)


def test_holm_against_hand_computed_values():
    from regnet_space.analysis.edf import holm

    # sorted p 0.01, 0.02, 0.03, 0.04 (m = 4): 4*0.01 = 0.04, 3*0.02 = 0.06, 2*0.03 = 0.06, 1*0.04 = 0.04 -> 0.06
    assert np.allclose(holm([0.03, 0.01, 0.04, 0.02]), [0.06, 0.04, 0.06, 0.06])
    # sorted 0.005, 0.4, 0.5: 3*0.005 = 0.015, 2*0.4 = 0.8, 1*0.5 = 0.5 -> 0.8 (never below an earlier step)
    assert np.allclose(holm([0.5, 0.005, 0.4]), [0.8, 0.015, 0.8])
    # the cap at 1: 3*0.01 = 0.03, 2*0.6 = 1.2 -> 1, 1*0.7 -> max(1, 0.7) = 1
    assert np.allclose(holm([0.6, 0.01, 0.7]), [1.0, 0.03, 1.0])
    assert holm([0.2]).tolist() == [0.2] and holm([]).size == 0


def _exact_stratified_p(errors_a, errors_b, bins_a, bins_b, num_bins):
    """Enumerate every relabelling that keeps each bin's count of a-models: the exact stratified p."""
    errors = np.concatenate([errors_a, errors_b])
    order = np.argsort(errors, kind="stable")
    errors, bins = errors[order], np.concatenate([bins_a, bins_b])[order]
    labels = order < len(errors_a)
    per_model = _per_model_weights(labels, bins)
    observed = _sup_gap(errors, labels, per_model)
    per_bin = []
    for j in range(num_bins):
        members = np.flatnonzero(bins == j)
        per_bin.append([set(c) for c in itertools.combinations(members, int(labels[members].sum()))])
    stats_all = []
    for choice in itertools.product(*per_bin):
        relabelled = np.isin(np.arange(len(errors)), list(set().union(*choice)))
        stats_all.append(_sup_gap(errors, relabelled, _per_model_weights(relabelled, bins)))
    return observed, np.mean(np.array(stats_all) >= observed - 1e-12)


def _per_model_weights(labels, bins):
    """Each model's NDS weight 1/(k*m_j) within its own group, counted directly."""
    weights = np.empty(len(labels))
    for group in (labels, ~labels):
        k = len(np.unique(bins[group]))
        for i in np.flatnonzero(group):
            weights[i] = 1.0 / (k * np.sum(group & (bins == bins[i])))
    return weights


def _sup_gap(errors, labels, weights):
    """sup over e of |F_a(e) - F_b(e)|, each EDF evaluated at every error by summing weights directly."""
    return max(abs(weights[labels & (errors <= e)].sum() - weights[~labels & (errors <= e)].sum()) for e in errors)


def test_stratified_permutation_p_matches_exact_enumeration():
    # Two bins; a has 3 + 2 models, b 2 + 3: 10 * 10 = 100 within-bin relabellings.
    errors_a, bins_a = np.array([10.0, 12.0, 13.0, 20.0, 21.0]), np.array([0, 0, 0, 1, 1])
    errors_b, bins_b = np.array([14.0, 15.0, 22.0, 23.0, 24.0]), np.array([0, 0, 1, 1, 1])
    observed, exact = _exact_stratified_p(errors_a, errors_b, bins_a, bins_b, 2)
    result = ks_test(errors_a, errors_b, bins_a, bins_b, 2, permutations=20_000, seed=3)
    assert result["statistic"] == pytest.approx(observed)
    # By hand: weights are 1/6 (a) and 1/4 (b) in bin 0, 1/4 (a) and 1/6 (b) in bin 1, and every bin-0 error is
    # below every bin-1 error, so F_a - F_b is 0 between the bins. D = 0.5 (observed) needs the three a's first
    # or the two b's first in bin 0 (2 of 10 orders), or the same in bin 1: p = 1 - 0.8 * 0.8 = 0.36.
    assert observed == pytest.approx(0.5) and exact == pytest.approx(0.36)
    assert result["pvalue"] == pytest.approx(exact, abs=0.005)
    assert "within 2 bins" in result["method"]


def test_edf_gaps_of_within_bin_permutations_are_the_directly_counted_gaps():
    # Ties in the errors, and a group with no model in bin 2: the fixed weights must still be each row's own.
    from regnet_space.analysis.edf import edf_gaps, permute_within_bins, stratum_weights

    rng = np.random.default_rng(4)
    errors = np.sort(rng.integers(0, 12, 40).astype(float))
    bins = rng.integers(0, 3, 40)
    labels = (rng.random(40) < 0.5) & (bins != 2)
    last_of_tie = np.r_[errors[1:] != errors[:-1], True]
    weights = stratum_weights(labels, bins, 3)
    rows = np.vstack([labels, permute_within_bins(labels, bins, 30, rng)])
    gaps = edf_gaps(rows, bins, weights, last_of_tie)
    for row, gap in zip(rows, gaps):
        assert np.abs(gap).max() == pytest.approx(_sup_gap(errors, row, _per_model_weights(row, bins)), abs=1e-12)


def test_within_bin_permutation_keeps_every_bins_count():
    from regnet_space.analysis.edf import permute_within_bins

    rng = np.random.default_rng(0)
    bins = rng.integers(0, 4, 50)
    labels = rng.random(50) < 0.4
    shuffled = permute_within_bins(labels, bins, 200, rng)
    for j in range(4):
        assert (shuffled[:, bins == j].sum(axis=1) == labels[bins == j].sum()).all()
    assert (shuffled != labels).any(axis=1).mean() > 0.9  # and they do move


def test_mean_difference_interval_covers_and_is_seeded():
    from regnet_space.analysis.bootstrap import mean_difference_ci

    rng = np.random.default_rng(5)
    a, b = rng.normal(20, 2, 80), rng.normal(19, 2, 80)
    diff, (lo, hi) = mean_difference_ci(a, b, seed=1)
    assert diff == pytest.approx(a.mean() - b.mean()) and lo < diff < hi
    half = 1.96 * np.sqrt(a.var() / 80 + b.var() / 80)  # the normal-theory interval
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert mean_difference_ci(a, b, seed=1) == (diff, (lo, hi))
    # Normalised: the mean is the average of the bin means, whatever each bin's count.
    bins_a, bins_b = np.r_[np.zeros(70, int), np.ones(10, int)], np.r_[np.zeros(10, int), np.ones(70, int)]
    diff, (lo, hi) = mean_difference_ci(a, b, bins_a, bins_b, 2, seed=1)
    expected = (a[:70].mean() + a[70:].mean()) / 2 - (b[:10].mean() + b[10:].mean()) / 2
    assert diff == pytest.approx(expected) and lo < diff < hi
    # Coverage over replicates of a true difference of 1: about 95%.
    hits = 0
    for seed in range(60):
        r = np.random.default_rng(100 + seed)
        _, (lo, hi) = mean_difference_ci(r.normal(1, 1, 40), r.normal(0, 1, 40), samples=500, seed=seed)
        hits += lo <= 1 <= hi
    assert hits >= 52  # 95% of 60 = 57; binomial sd 1.7


def test_compare_reports_holm_and_mean_differences():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"space": np.repeat(["a", "b", "c"], 40),
                          "error": np.r_[rng.normal(20, 1, 40), rng.normal(20, 1, 40), rng.normal(22, 1, 40)],
                          "flops": rng.uniform(0, 10, 120)})
    for result in (compare(frame, ci_samples=300), compare(frame, normalize="flops", bins=3, permutations=200,
                                                           ci_samples=300)):
        pvalues = [t["pvalue"] for t in result.ks]
        assert [t["p_holm"] for t in result.ks] == pytest.approx(holm_of(pvalues))
        ac = result.pair("a", "c")
        drawn = result.edfs["a"].mean_error - result.edfs["c"].mean_error
        if result.binning is None:
            assert ac["mean_diff"] == pytest.approx(drawn)
        else:  # at equal flops within bins: errors here do not depend on flops, so nearly the drawn EDFs' gap
            assert ac["mean_diff"] == pytest.approx(drawn, abs=0.05) and ac["mean_diff"] != drawn
        assert ac["mean_diff_ci"][0] < ac["mean_diff"] < ac["mean_diff_ci"][1] < 0
        ca = result.pair("c", "a")
        assert ca["mean_diff"] == -ac["mean_diff"] and ca["mean_diff_ci"][0] > 0
        assert "Holm-adjusted over the 3 pairwise comparisons" in result.holm_note()


def holm_of(pvalues):
    from regnet_space.analysis.edf import holm

    return holm(pvalues).tolist()


def test_normalised_and_plain_tests_are_calibrated_on_null_tables():
    """Fast calibration (the full one, 1000 tables, is analysis/calibration/run.py): 80 null tables each.

    Expected 4 rejections of 80 at alpha = 0.05 (binomial sd 1.9); 10 or more has probability < 1%. Shuffling
    labels across bins (the old test) rejected 35-47% of such normalised null tables."""
    from regnet_space.analysis.calibration import two_space_table

    plain = normalised = shifted = 0
    for t in range(80):
        rng = np.random.default_rng([11, t])
        plain += compare(two_space_table(60, rng, mixes="same", bins=4), ci_samples=1).ks[0]["pvalue"] <= 0.05
        frame = two_space_table(60, rng, mixes="across-bins", bins=4)
        test = compare(frame, normalize="flops", bins=4, value_range=(0, 4), permutations=200, ci_samples=1, seed=t)
        normalised += test.ks[0]["pvalue"] <= 0.05
        if t < 20:  # and the test has power: b's errors 0.8 points higher in every bin
            frame.loc[frame["space"] == "b", "error"] += 0.8
            shifted += compare(frame, normalize="flops", bins=4, value_range=(0, 4), permutations=200,
                               ci_samples=1, seed=t).ks[0]["pvalue"] <= 0.05
    assert plain <= 9 and normalised <= 9
    assert shifted >= 15


def _skewed_within_bins(rng, n, skew=3.0, bins=4):
    """Two spaces with the same error at every flops value (25 - flops + N(0, 1)) and the same count in every
    bin, but a's models sit at the top of each bin and b's at the bottom: at equal flops they are equal."""
    u = rng.random((2, n))
    within = np.r_[1 - u[0] ** (1 + skew), u[1] ** (1 + skew)]
    flops = np.tile(np.repeat(np.arange(bins), n // bins), 2)[: 2 * n] + within
    error = 25 - flops + rng.normal(0, 1, 2 * n)
    return pd.DataFrame({"space": np.repeat(["a", "b"], n), "error": error, "flops": flops + 1})


def test_normalised_comparison_holds_complexity_equal_within_bins():
    """Binning alone credits a with its higher flops inside every bin (about 0.6 points here); the adjusted
    comparison does not: over 40 skewed null tables of 400 models per space its rejections stay near alpha and
    its mean-difference interval covers the true 0, while the unadjusted gap of the drawn EDFs is far from 0."""
    rng = np.random.default_rng(3)
    rejected = covered = 0
    gaps = []
    for t in range(40):
        result = compare(_skewed_within_bins(rng, 400), normalize="flops", bins=4, value_range=(1, 5),
                         permutations=200, ci_samples=400, seed=t)
        test = result.ks[0]
        rejected += test["pvalue"] <= 0.05
        covered += test["mean_diff_ci"][0] <= 0 <= test["mean_diff_ci"][1]
        gaps.append(result.edfs["a"].mean_error - result.edfs["b"].mean_error)
    assert np.mean(gaps) < -0.4  # what binning alone would compare
    assert rejected <= 6 and covered >= 34  # nominal 2 of 40 and 38 of 40

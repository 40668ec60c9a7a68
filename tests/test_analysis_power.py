"""`regnet-space power`: the exact KS null distribution, simulated power against theory, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from regnet_space.analysis.power import Pilot, ks_pvalue_equal_n, required_n, shift_for_ks, simulated_power
from regnet_space.cli import main


@pytest.mark.parametrize("n, shift", [(8, 0.7), (15, 0.5), (30, 0.3)])
def test_exact_ks_pvalue_is_scipys(n, shift):
    rng = np.random.default_rng(n)
    x, y = rng.normal(0, 1, n), rng.normal(shift, 1, n)
    ref = stats.ks_2samp(x, y, method="exact")
    assert ks_pvalue_equal_n(n, np.array([round(ref.statistic * n)]))[0] == pytest.approx(ref.pvalue, rel=1e-6)


def test_simulated_power_under_the_null_is_at_most_alpha():
    pilot = Pilot.of(np.random.default_rng(0).normal(20, 2, 300))
    for test in ("ks", "mean"):
        rate = simulated_power(pilot, pilot, 30, test=test, alpha=0.05, replicates=2000, seed=1)
        assert 0.02 <= rate <= 0.065  # 2000 studies: sd 0.5%; the exact KS test is a bit conservative


def test_required_n_for_a_mean_gap_matches_the_normal_theory():
    pilot = Pilot.of(np.random.default_rng(1).normal(20, 2, 3000))
    n = required_n(pilot, pilot, shift=1.0, test="mean", power=0.8, alpha=0.05, replicates=600, seed=0)
    theory = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * 4 / 1.0**2  # 62.8
    assert 0.85 * theory <= n <= 1.15 * theory


def test_shift_for_ks_gives_the_asked_distance():
    pilot = Pilot.of(np.random.default_rng(2).normal(0, 1, 1500))
    shift = shift_for_ks(pilot, 0.2)
    assert shift == pytest.approx(2 * stats.norm.ppf(0.6), rel=0.05)  # N(0,1) vs N(s,1): D = 2*Phi(s/2) - 1


def test_power_cli(tmp_path, capsys):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"space": np.repeat(["a", "b"], 60), "error": np.r_[rng.normal(20, 2, 60),
                                                                            rng.normal(21.5, 2, 60)],
                          "flops": 1, "params": 1, "acts": 1})
    path = tmp_path / "pilot.csv"
    frame.to_csv(path, index=False)
    assert main(["power", str(path), "--json", "--replicates", "200"]) == 0
    result = json.loads(capsys.readouterr().out)
    (row,) = result["rows"]
    assert (row["a"], row["b"], result["comparisons"]) == ("a", "b", 1)
    assert 10 <= row["n_mean"] <= 80 and row["n_ks"] > row["n_mean"] // 2
    assert main(["power", str(path), "--gap", "1", "--ks", "0.3", "--comparisons", "6", "--replicates", "200"]) == 0
    out = capsys.readouterr().out
    assert "alpha 0.05 / 6 comparisons = 0.00833" in out and "a (pilot n 60): KS distance 0.3" in out
    with pytest.raises(SystemExit) as exc:
        main(["power", str(path), "--ks", "1.5"])
    assert exc.value.code == 2 and "must be in (0, 1)" in capsys.readouterr().err

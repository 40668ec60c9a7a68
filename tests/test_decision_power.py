"""The power table of a design run's paired decisions (analysis/design_loop/decision_power.py): the round's level
is recovered from a recorded boundary, and the simulated power is the rule's own (about its level with no
effect, near 1 for an effect many times the noise)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis" / "design_loop"))

from decision_power import level_of, power, spread  # noqa: E402

from regnet_space.design.paired import SequentialRule  # noqa: E402


def test_the_level_is_recovered_from_a_later_look_boundary():
    rule = SequentialRule(60, alpha=0.005)
    assert abs(level_of(60, 3, rule.bounds[2]) - 0.005) < 5e-5
    assert abs(level_of(60, 4, rule.bounds[3]) - 0.005) < 5e-5


def test_power_is_the_rules_level_without_an_effect_and_near_one_for_a_large_one():
    rng = np.random.default_rng(0)
    rule = SequentialRule(60, alpha=0.05)
    assert power(rule, 0.0, 1.0, 2000, rng) < 0.08
    assert power(rule, 1.0, 1.0, 400, rng) > 0.99
    assert 0.2 < power(rule, 0.3, 1.0, 1000, rng) < 0.9


def test_the_spread_of_a_difference_comes_from_the_interval_and_the_pairs():
    row = {"pairs": 40, "effect_low": -1.0, "effect_high": 1.0}
    from scipy import stats

    assert abs(spread(row) - np.sqrt(40) / stats.t.ppf(0.975, 38)) < 1e-12

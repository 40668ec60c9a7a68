"""The bootstrap of good ranges: the vectorised draw equals the plain loop, and the ranges find the answer."""

import numpy as np
import pandas as pd
import pytest

from regnet_space.analysis.bootstrap import bootstrap_winners, good_ranges
from regnet_space.errors import UserError


def test_winners_are_the_lowest_error_of_each_resample():
    errors = np.random.default_rng(0).normal(30, 3, 40)
    winners = bootstrap_winners(errors, samples=700, fraction=0.25, seed=3)
    # Replay the same stream of draws one resample at a time (chunks of 512 rows, 10 models each).
    rng = np.random.default_rng(3)
    expected = []
    for rows in (512, 188):
        for draw in rng.integers(0, 40, size=(rows, 10)):
            expected.append(draw[np.argmin(errors[draw])])
    assert winners.tolist() == expected


def test_good_range_centres_on_the_best_value():
    rng = np.random.default_rng(1)
    depth = rng.integers(1, 41, 2000)
    frame = pd.DataFrame({"depth": depth, "error": 20 + 0.05 * (depth - 20) ** 2 + rng.normal(0, 1, 2000),
                          "flops": rng.uniform(1e6, 2e6, 2000)})
    ranges = good_ranges(frame, samples=10_000, seed=0)
    assert list(ranges.index) == ["depth", "flops"]
    low, median, high = ranges.loc["depth", ["low", "median", "high"]]
    assert 14 <= low <= median <= high <= 26 and 17 <= median <= 23
    assert ranges.loc["depth", "min"] == 1 and ranges.loc["depth", "max"] == 40
    # Flops do not affect error here: its good range spans most of the population.
    assert ranges.loc["flops", "high"] - ranges.loc["flops", "low"] > 0.8e6


def test_bad_arguments():
    with pytest.raises(UserError, match="fraction"):
        bootstrap_winners(np.ones(3), fraction=0)
    with pytest.raises(UserError, match="at least one model"):
        bootstrap_winners(np.array([]))


def test_a_large_group_is_resampled_in_chunks_with_the_same_numbers(monkeypatch):
    """A 10^6-model group once took a (2,000 x 333,334) index matrix (5 GiB); the resamples are drawn in chunks
    of rows, which take the same numbers from the generator, so the interval does not change."""
    from regnet_space.analysis import bootstrap

    rng = np.random.default_rng(4)
    a, b = rng.normal(20, 1, 300), rng.normal(21, 1, 200)
    whole = bootstrap.mean_difference_ci(a, b, samples=500, seed=3)
    monkeypatch.setattr(bootstrap, "_INDICES", 1000)  # 3 rows of 300 at a time
    assert bootstrap.mean_difference_ci(a, b, samples=500, seed=3) == whole

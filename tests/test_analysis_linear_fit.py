"""The quantized linear fit recovers RegNet widths and scores AnyNetX_A widths clearly worse."""

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from regnet_space.analysis.linear_fit import e_fit, fit_many, fit_quantized_linear
from regnet_space.errors import UserError
from regnet_space.models.catalog import REGNET_ZOO
from regnet_space.models.regnet import quantized_block_widths


def _random_regnet(rng):
    """A RegNet draw from the paper's constrained ranges (d 12..28, w0 8..256, wa 8..256, wm 1.5..3)."""
    return (rng.randint(12, 28), 8 * rng.randint(1, 32), round(float(np.exp(rng.uniform(np.log(8), np.log(256)))), 2),
            round(rng.uniform(1.5, 3.0), 3))


def test_e_fit_definition():
    assert e_fit(np.array([8.0, 16.0]), np.array([8.0, 32.0])) == pytest.approx(np.log(2) / 2)


def test_recovers_regnet_generated_widths():
    rng = random.Random(0)
    fits = []
    for _ in range(60):
        depth, w0, wa, wm = _random_regnet(rng)
        widths = quantized_block_widths(depth, w0, wa, wm)
        fit = fit_quantized_linear(widths)
        assert fit.depth == depth and fit.e_fit < 0.01
        assert fit.widths == quantized_block_widths(depth, fit.w0, fit.wa, fit.wm)  # e_fit is of what is returned
        fits.append(fit.e_fit == 0 and fit.widths == widths and fit.w0 == w0)
    assert sum(fits) >= 58  # exact (widths reproduced, e_fit = 0) for nearly all; measured 60/60 here


def test_published_models_fit_closely():
    # Zoo widths went through group compatibility (e.g. RegNetX-400MF's 392 -> 384), so the fit is near, not exact.
    for name in ("regnetx_002", "regnetx_004", "regnety_016"):
        widths = REGNET_ZOO[name].to_spec().block_widths()
        assert fit_quantized_linear(widths).e_fit < 0.05, name  # X-400MF: 0.029 (24 -> 32 by g=16)


def test_random_anynetx_a_widths_fit_clearly_worse():
    rng = random.Random(1)
    regnet, anynet = [], []
    for _ in range(40):
        regnet.append(fit_quantized_linear(quantized_block_widths(*_random_regnet(rng))).e_fit)
        depths = [int(np.exp(rng.uniform(0, np.log(16)))) for _ in range(4)]
        widths = [8 * max(1, round(float(np.exp(rng.uniform(np.log(8), np.log(1024)))) / 8)) for _ in range(4)]
        anynet.append(fit_quantized_linear([w for d, w in zip(depths, widths) for _ in range(d)]).e_fit)
    assert max(regnet) < 0.01
    assert np.median(anynet) > 0.3 and np.percentile(anynet, 10) > 0.05


def _plain_fit():
    """The per-model fit the vectorised one replaced (kept as the benchmark's reference)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "plain_linear_fit.py"
    spec = importlib.util.spec_from_file_location("plain_linear_fit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plain_fit


def _width_sequences(rng, n):
    """AnyNet-like stages, RegNet widths (exact fits: many tied zero scores), arbitrary widths (not multiples of
    8, below 8), one stage, one block."""
    out = [[8], [3], [1000], [64] * 20, [8, 8], [24, 16], [5, 7, 11]]
    for i in range(n - len(out)):
        kind = i % 5
        if kind == 0:
            depths, widths = [rng.randint(1, 8) for _ in range(4)], [8 * rng.randint(1, 128) for _ in range(4)]
            out.append([w for d, w in zip(depths, sorted(widths)) for _ in range(d)])
        elif kind == 1:
            out.append(quantized_block_widths(*_random_regnet(rng)))
        elif kind == 2:
            out.append([rng.randint(1, 400) for _ in range(rng.randint(1, 12))])
        elif kind == 3:
            out.append([8 * rng.randint(1, 40)] * rng.randint(1, 16))
        else:
            out.append(REGNET_ZOO[rng.choice(sorted(REGNET_ZOO))].to_spec().block_widths())
    return out


def test_vectorised_fit_equals_the_per_model_fit():
    plain_fit = _plain_fit()
    models = _width_sequences(random.Random(7), 300)
    fits = fit_many(models)  # all depths in one call
    ties = 0
    for widths, fit in zip(models, fits):
        reference = plain_fit(widths)
        assert (fit.depth, fit.w0, fit.wa, fit.wm, fit.widths) == (reference.depth, reference.w0, reference.wa,
                                                                  reference.wm, reference.widths), widths
        assert abs(fit.e_fit - reference.e_fit) <= 1e-9
        ties += reference.e_fit == 0
    assert ties >= 60  # exact fits, where many grid points tie at 0 and the grid order decides
    assert fit_quantized_linear(models[10]) == fits[10]


@pytest.mark.parametrize("processes", [2, 3])
def test_fits_spread_over_processes_are_the_same_fits_in_order(processes):
    # Enough models to be spread, in batches of several depths: worker processes search the first batches and
    # this one takes back the last ones no worker has started.
    models = _width_sequences(random.Random(11), 300)
    assert fit_many(models, processes=processes) == fit_many(models)


def test_fits_in_a_pool_they_share_wait_behind_its_earlier_work_and_leave_it_open():
    # A report hands its worker process the comparison of the spaces first, then the fits.
    from regnet_space.analysis.linear_fit import PendingFits, worker_pool

    models = _width_sequences(random.Random(12), 300)
    with worker_pool(1) as pool:
        earlier = pool.submit(sum, [1, 2, 3])
        with PendingFits(models, pool=pool) as pending:
            fits = pending.result()
        assert earlier.result() == 6 and pool.submit(abs, -4).result() == 4  # the pool outlives the fits
        with PendingFits(models, pool=pool):
            pass  # left without the result: its unstarted batches are cancelled, the pool still works
        assert pool.submit(abs, -5).result() == 5
    assert fits == fit_many(models)


def test_fit_many_rejects_bad_widths():
    with pytest.raises(UserError, match="positive block widths"):
        fit_many([[8, 16], [8, 0]])
    assert fit_many([]) == []

"""The quantized linear fit recovers RegNet widths and scores AnyNetX_A widths clearly worse."""

import random

import numpy as np
import pytest

from regnet_space.analysis.linear_fit import e_fit, fit_quantized_linear
from regnet_space.catalog import REGNET_ZOO
from regnet_space.regnet import quantized_block_widths


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

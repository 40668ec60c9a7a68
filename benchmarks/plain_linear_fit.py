"""The quantized linear fit as the package computed it before it was vectorised: one model at a time, every
candidate's widths predicted with ``**`` and ``log`` per block. Kept outside the package as the reference "plain
way": ``benchmarks/analysis_speed.py`` times it against ``regnet_space.analysis.linear_fit`` and the tests hold
the two equal.
"""

from __future__ import annotations

import numpy as np

from regnet_space.analysis.linear_fit import LinearFit, e_fit
from regnet_space.models.regnet import quantized_block_widths

_REFINE_TOP = 8  # coarse optima refined
_REFINE_ROUNDS = 4


def _predict(w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, depth: int, q: int) -> np.ndarray:
    """quantized_block_widths for many (w0, wa, wm) at once: a (candidates, depth) array."""
    j = np.arange(depth)
    u = w0[:, None] + wa[:, None] * j
    k = np.round(np.log(u / w0[:, None]) / np.log(wm)[:, None])
    return q * np.round(w0[:, None] * wm[:, None] ** k / q)


def _score(observed: np.ndarray, w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, q: int) -> np.ndarray:
    w0, wa, wm = (a.ravel() for a in np.meshgrid(w0, np.round(wa, 2), np.round(wm, 3), indexing="ij"))
    return np.stack([w0, wa, wm, e_fit(_predict(w0, wa, wm, len(observed), q), observed)], axis=1)


def plain_fit(block_widths: list[int], *, q: int = 8, wm_range: tuple[float, float] = (1.5, 3.0),
              wa_max: float = 256.0) -> LinearFit:
    """The (w0, wa, wm) with depth = len(block_widths) whose quantized widths best match ``block_widths``."""
    observed = np.asarray(block_widths, dtype=float)
    if observed.size == 0 or np.any(observed <= 0):
        raise ValueError(f"a linear fit needs positive block widths, got {list(block_widths)}")
    wm_lo, wm_hi = wm_range
    top = max(q, q * round(observed.max() / q))
    first = max(q, q * round(observed[0] / q))  # a RegNet's first block width is w0 itself
    w0_grid = np.unique(np.r_[q * np.round(np.geomspace(1, top / q, 24)), first])
    # Widths w0*wm^k of a RegNet suggest wm directly: (width / first)^(1/k) for each distinct width.
    ratios = np.unique(observed[observed > first]) / first
    suggested = (ratios[:, None] ** (1.0 / np.arange(1, 4))).ravel()
    wm_grid = np.r_[np.linspace(wm_lo, wm_hi, 16), suggested[(suggested >= wm_lo) & (suggested <= wm_hi)]]
    coarse = _score(observed, w0_grid, np.r_[0.0, np.geomspace(1.0, wa_max, 40)], wm_grid, q)
    best = coarse[np.argsort(coarse[:, 3], kind="stable")[:_REFINE_TOP]]
    candidates = [best]
    for w0, wa, wm, _ in best:
        span, step = 1.5, (wm_hi - wm_lo) / 15
        for _ in range(_REFINE_ROUNDS):
            local = _score(observed, np.maximum(q, w0 + q * np.arange(-2, 3)),
                           np.clip(np.r_[wa * np.geomspace(1 / span, span, 11), wa + np.linspace(-1, 1, 5)], 0, wa_max),
                           np.clip(wm + step * np.linspace(-1, 1, 11), wm_lo, wm_hi), q)
            w0, wa, wm, _ = local[np.argmin(local[:, 3])]
            candidates.append(local)
            span, step = span**0.5, step / 4
    scored = np.concatenate(candidates)
    w0, wa, wm, _ = scored[np.argmin(scored[:, 3])]
    w0, wa, wm = int(w0), float(wa), float(wm)
    widths = quantized_block_widths(len(observed), w0, wa, wm, q)
    return LinearFit(len(observed), w0, wa, wm, float(e_fit(np.asarray(widths, float), observed)), widths)

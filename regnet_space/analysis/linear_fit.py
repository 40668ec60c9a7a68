"""The quantized linear fit (RegNet paper, Sec. 3.3): how close are a model's per-block widths to a RegNet's?

For a model of d blocks with observed widths w_j, find (w0, wa, wm) with d fixed whose quantized RegNet widths
(``regnet.quantized_block_widths``) minimise e_fit = mean_j |log(predicted_j / observed_j)|. The objective is
piecewise constant (widths are quantized), so it is searched on a grid (w0 x wa x wm), then the best points are
refined on ever finer local grids around them. Reported values are rounded (wa to 0.01, wm to 0.001) before they
are scored, so the e_fit returned is exactly that of the returned parameters.

Many models are fitted at once (a report fits every model of a study): models of equal depth share arrays, and a
grid is scored without a ``**`` or ``log`` per candidate and block. Each candidate's exponents
k_j = round(log(u_j / w0) / log(wm)) need log(u_j / w0) once per (w0, wa) and log(wm) once per wm; its widths
q * round(w0 * wm^k / q) and their |log(width / observed)| are tables per (w0, wm, k, distinct observed width)
that every wa shares. Only candidates that can matter are scored (branch and bound, ``_score_grid``): the coarse
grid's 8 best and each refinement grid's best; the others get a lower bound per cell of candidates and are
skipped when it exceeds a score already found. Refinement points of a model that meet at the same centre are
refined once. What is scored is computed with the same NumPy operations on the same values as predicting every
candidate's widths directly (``benchmarks/plain_linear_fit.py``, the per-model way this replaced), so the scores,
the order of candidates and the ties broken by it are identical (tests hold the two equal).
"""

from __future__ import annotations

import multiprocessing
from collections import defaultdict
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..models.regnet import quantized_block_widths

_REFINE_TOP = 8  # coarse optima refined
_REFINE_ROUNDS = 4
_CELL_WA = 16  # wa values per bounded cell (see _score_grid)
_CHUNK_ELEMENTS = 1 << 18  # candidates x blocks scored per step: bounds memory, keeps arrays near the cache
_BATCH = 64  # models per task when the fits are spread over processes
SPREAD_FROM = 256  # fewer models fit in about a second: less than starting processes takes


@dataclass(frozen=True)
class LinearFit:
    """The best quantized linear fit of one model's per-block widths."""

    depth: int
    w0: int
    wa: float
    wm: float
    e_fit: float
    widths: list[int]  # the fitted (predicted) per-block widths


def e_fit(predicted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Mean |log(predicted / observed)| over blocks (the last axis)."""
    return np.mean(np.abs(np.log(predicted) - np.log(observed)), axis=-1)


def fit_quantized_linear(block_widths: list[int], *, q: int = 8, wm_range: tuple[float, float] = (1.5, 3.0),
                         wa_max: float = 256.0) -> LinearFit:
    """The (w0, wa, wm) with depth = len(block_widths) whose quantized widths best match ``block_widths``."""
    return fit_many([block_widths], q=q, wm_range=wm_range, wa_max=wa_max)[0]


def fit_many(models: Sequence[Sequence[int]], *, q: int = 8, wm_range: tuple[float, float] = (1.5, 3.0),
             wa_max: float = 256.0, progress: bool = False, processes: int = 1) -> list[LinearFit]:
    """``fit_quantized_linear`` of every model in ``models`` (lists of per-block widths), vectorised over models;
    spread over ``processes`` processes, this one included, when more than one (each model's fit is independent
    of the others', so the results are the same)."""
    with PendingFits(models, q=q, wm_range=wm_range, wa_max=wa_max, processes=processes) as fits:
        return fits.result(progress)


class PendingFits:
    """The fits of ``fit_many``, started at once. With ``processes`` > 1 (and enough models to be worth starting
    processes) ``processes`` - 1 worker processes start on them now, so they run while this process does other
    work (a report draws its figures); when ``result`` is called, this process searches the batches no worker
    has started yet, the last ones first, then waits for the rest. Otherwise every fit is searched in ``result``.
    ``pool``: worker processes to submit to instead of starting new ones (``processes`` is then ignored), behind
    whatever was submitted to them before. Use it as a context manager: leaving it early cancels the fits no
    worker has started."""

    def __init__(self, models: Sequence[Sequence[int]], *, q: int = 8,
                 wm_range: tuple[float, float] = (1.5, 3.0), wa_max: float = 256.0, processes: int = 1,
                 pool: Executor | None = None) -> None:
        self._observed = [np.asarray(widths, dtype=float) for widths in models]
        for widths, values in zip(models, self._observed):
            if values.size == 0 or np.any(values <= 0):
                raise UserError(f"a linear fit needs positive block widths, got {list(widths)}")
        self._q, self._options = q, (q, wm_range, wa_max)
        by_depth: dict[int, list[int]] = defaultdict(list)
        for i, values in enumerate(self._observed):
            by_depth[values.size].append(i)
        spread = (pool is not None or processes > 1) and len(self._observed) >= SPREAD_FROM
        # Batches of one depth (models of equal depth share arrays); more batches than processes to share the work.
        size = _BATCH if spread else len(self._observed)
        batches = [(indices, np.stack([self._observed[i] for i in indices])) for _, rows in sorted(by_depth.items())
                   for indices in (rows[s:s + size] for s in range(0, len(rows), size))]
        self._pool: Executor | None = None
        self._batches, self._futures, self._own = batches, [], ExitStack()
        if spread and len(batches) > 1:
            self._pool = pool if pool is not None else self._own.enter_context(worker_pool(processes - 1))
            self._batches = sorted(batches, key=lambda batch: -batch[1].size)  # largest first, smallest stolen
            self._futures = [self._pool.submit(_search, stack, *self._options) for _, stack in self._batches]

    def __enter__(self) -> "PendingFits":
        return self

    def __exit__(self, *exc_info) -> None:
        for future in self._futures:  # the pool may be another's, and outlive this
            future.cancel()
        self._own.__exit__(*exc_info)

    def result(self, progress: bool = False) -> list[LinearFit]:
        """Every model's fit, in the order given."""
        params: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(self._observed)
        with tqdm(total=len(self._observed), desc="linear fits", unit="model", disable=not progress) as bar:
            for indices, found in self._searched():
                for i, point in zip(indices, found):
                    params[i] = point
                bar.update(len(indices))
        fits = []
        for values, (w0, wa, wm) in zip(self._observed, params):
            widths = quantized_block_widths(values.size, int(w0), float(wa), float(wm), self._q)
            fits.append(LinearFit(values.size, int(w0), float(wa), float(wm),
                                  float(e_fit(np.asarray(widths, float), values)), widths))
        return fits

    def _searched(self) -> Iterator[tuple[list[int], list[tuple[float, float, float]]]]:
        """Each batch (indices of models of one depth) with its models' best points, as the batches are done."""
        if self._pool is None:
            for indices, stack in self._batches:
                yield indices, _search(stack, *self._options)
            return
        # Workers take batches in order: once one cannot be taken back (a worker has it), every earlier one is taken.
        stolen = 0
        for future, (indices, stack) in zip(reversed(self._futures), reversed(self._batches)):
            if not future.cancel():
                break
            stolen += 1
            yield indices, _search(stack, *self._options)
        started = self._futures[:len(self._futures) - stolen]
        order = {future: i for i, future in enumerate(started)}
        for done in as_completed(started):
            yield self._batches[order[done]][0], done.result()


@contextmanager
def worker_pool(processes: int) -> Iterator[ProcessPoolExecutor]:
    """``processes`` worker processes, as a context: fresh interpreters ("spawn"), not forks of a process that
    may hold threads (a progress bar's). Leaving it cancels the tasks no worker has started; leaving early (an
    error, a signal) does not wait for the others either."""
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(cancel_futures=True)


def _search(observed: np.ndarray, q: int, wm_range: tuple[float, float], wa_max: float
            ) -> list[tuple[float, float, float]]:
    """The best (w0, wa, wm) of each row of ``observed`` (models x blocks, one depth): a coarse grid, then the
    ``_REFINE_TOP`` best coarse points refined for ``_REFINE_ROUNDS`` rounds each; the lowest score seen wins
    (ties: the coarse points in score order first, then each point's refinements in turn, each grid in its own
    order, which is the order of ``np.argmin`` over all scores concatenated)."""
    models, depth = observed.shape
    log_observed = _distinct(np.log(observed))
    coarse_chunk = max(1, _CHUNK_ELEMENTS // (25 * 41 * 28 * 4))  # ~4 distinct widths: tables, not blocks
    tops = [_coarse(tuple(a[s:s + coarse_chunk] for a in log_observed), observed[s:s + coarse_chunk], q, wm_range,
                    wa_max)
            for s in range(0, models, coarse_chunk)]
    top_score = np.concatenate([t[0] for t in tops])  # (models, _REFINE_TOP)
    first_score = top_score[:, 0]
    top = [np.concatenate([t[1][i] for t in tops]) for i in range(3)]  # (models, _REFINE_TOP) each
    pair_log_observed = [np.repeat(a, _REFINE_TOP, axis=0) for a in log_observed]
    refine_chunk = max(1, _CHUNK_ELEMENTS // (5 * 16 * 11 * 4 * _REFINE_TOP))  # models
    rounds = [_refine(tuple(a[s * _REFINE_TOP:(s + refine_chunk) * _REFINE_TOP] for a in pair_log_observed),
                      *(t[s:s + refine_chunk].ravel() for t in (*top, top_score)), first_score[s:s + refine_chunk] == 0,
                      q=q, wm_range=wm_range, wa_max=wa_max)
              for s in range(0, models, refine_chunk)]
    # (models, pairs x rounds): pair 0's rounds, pair 1's rounds, ... as the search saw them
    scores, w0, wa, wm = (np.concatenate([r[i] for r in rounds]).reshape(models, -1) for i in range(4))
    found = []
    for m in range(models):
        if first_score[m] <= scores[m].min():
            found.append((top[0][m, 0], top[1][m, 0], top[2][m, 0]))
        else:
            i = int(np.argmin(scores[m]))
            found.append((w0[m, i], wa[m, i], wm[m, i]))
    return found


def _coarse(log_observed: tuple[np.ndarray, np.ndarray], observed: np.ndarray, q: int,
            wm_range: tuple[float, float], wa_max: float
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each model's ``_REFINE_TOP`` lowest coarse scores and their (w0, wa, wm), best first (ties: grid
    order)."""
    models = observed.shape[0]
    w0_grid, wm_grid = _coarse_grids(observed, q, wm_range)
    wa_grid = np.broadcast_to(np.round(np.r_[0.0, np.geomspace(1.0, wa_max, 40)], 2), (models, 41))
    scores = _score_grid(log_observed, w0_grid, wa_grid, wm_grid, q, _REFINE_TOP)  # +inf: padding, or not a top
    flat = scores.reshape(models, -1)
    # np.argsort(flat, kind="stable")[:, :_REFINE_TOP], sorting only the scores up to the _REFINE_TOP-th lowest
    rows, cols = np.nonzero(flat <= np.partition(flat, _REFINE_TOP - 1, axis=1)[:, _REFINE_TOP - 1:_REFINE_TOP])
    order = np.lexsort((cols, flat[rows, cols], rows))
    top = cols[order][np.searchsorted(rows[order], np.arange(models))[:, None] + np.arange(_REFINE_TOP)]
    a, b, c = np.unravel_index(top, scores.shape[1:])
    rows = np.arange(models)[:, None]
    return flat[rows, top], (w0_grid[rows, a], wa_grid[rows, b], wm_grid[rows, c])


def _refine(log_observed: tuple[np.ndarray, np.ndarray], w0: np.ndarray, wa: np.ndarray, wm: np.ndarray,
            score: np.ndarray, exact: np.ndarray, *,
            q: int, wm_range: tuple[float, float], wa_max: float) -> tuple[np.ndarray, ...]:
    """``_REFINE_ROUNDS`` ever finer local grids around each model's ``_REFINE_TOP`` coarse points (rows of
    ``log_observed`` and the centres with their scores: ``_REFINE_TOP`` consecutive rows per model), each
    centred on the previous one's best: every round's best score and point, (rows, rounds) arrays.

    A score of 0 (the widths reproduced) cannot be beaten, and the search keeps the first 0 it sees, so a model's
    later rounds of that point and all rounds of its later points are not scored (score inf); nor is any round
    of a model whose coarse grid has a 0 already (``exact``, one per model)."""
    wm_lo, wm_hi = wm_range
    w0, wa, wm, score = w0.copy(), wa.copy(), wm.copy(), score.copy()  # the centres, moved round by round
    active = ~np.repeat(exact, _REFINE_TOP)
    order = np.tile(np.arange(_REFINE_TOP), exact.size)  # each row's place among its model's points
    scores = np.full((w0.size, _REFINE_ROUNDS), np.inf)
    points = [np.zeros((w0.size, _REFINE_ROUNDS)) for _ in range(3)]
    span, step = 1.5, (wm_hi - wm_lo) / 15
    for r in range(_REFINE_ROUNDS):
        every = np.flatnonzero(active)
        if every.size == 0:
            break
        # Points of a model that reached the same centre go on identically: refine the first of each only.
        same = np.repeat(active.reshape(-1, 1, _REFINE_TOP), _REFINE_TOP, axis=1)  # (models, point, earlier point)
        for values in (w0, wa, wm):
            grouped = values.reshape(-1, _REFINE_TOP)
            same &= grouped[:, :, None] == grouped[:, None, :]
        lead = (same.argmax(axis=2) + np.arange(0, w0.size, _REFINE_TOP)[:, None]).ravel()[every]
        rows, within = np.unique(lead, return_inverse=True)  # rows refined; each active row's place among them
        local_w0 = np.maximum(q, w0[rows, None] + q * np.arange(-2, 3))
        local_wa = np.round(np.clip(np.concatenate([wa[rows, None] * np.geomspace(1 / span, span, 11),
                                                    wa[rows, None] + np.linspace(-1, 1, 5)], axis=1), 0, wa_max), 2)
        local_wm = np.round(np.clip(wm[rows, None] + step * np.linspace(-1, 1, 11), wm_lo, wm_hi), 3)
        # The centre is normally a grid point, so no point scoring above its score is the best one.
        centre = ((local_w0 == w0[rows, None]).any(axis=1) & (local_wa == wa[rows, None]).any(axis=1)
                  & (local_wm == wm[rows, None]).any(axis=1))
        local = _score_grid(tuple(a[rows] for a in log_observed), local_w0, local_wa, local_wm, q, 1,
                            np.where(centre, score[rows], np.inf)).reshape(rows.size, -1)
        best = np.argmin(local, axis=1)
        a, b, c = np.unravel_index(best, (local_w0.shape[1], local_wa.shape[1], local_wm.shape[1]))
        rows, a, b, c, best = every, a[within], b[within], c[within], best[within]
        w0[rows], wa[rows], wm[rows] = local_w0[within, a], local_wa[within, b], local_wm[within, c]
        scores[rows, r] = score[rows] = local[within, best]
        for point, values in zip(points, (w0, wa, wm)):
            point[rows, r] = values[rows]
        found = (scores[:, r] == 0).reshape(-1, _REFINE_TOP)
        first = np.where(found.any(axis=1), found.argmax(axis=1), _REFINE_TOP)
        active &= order < np.repeat(first, _REFINE_TOP)
        span, step = span**0.5, step / 4
    return (scores, *points)


@lru_cache(maxsize=None)
def _w0_base(top: float, q: int) -> np.ndarray:
    return q * np.round(np.geomspace(1, top / q, 24))


def _coarse_grids(observed: np.ndarray, q: int, wm_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Each model's coarse w0 and wm values (rounded as scored), padded with NaN to a common length."""
    wm_lo, wm_hi = wm_range
    w0s, wms = [], []
    for values in observed:
        top = max(q, q * round(values.max() / q))
        first = max(q, q * round(values[0] / q))  # a RegNet's first block width is w0 itself
        w0s.append(np.unique(np.r_[_w0_base(top, q), first]))
        # Widths w0*wm^k of a RegNet suggest wm directly: (width / first)^(1/k) for each distinct width.
        ratios = np.unique(values[values > first]) / first
        suggested = (ratios[:, None] ** (1.0 / np.arange(1, 4))).ravel()
        wms.append(np.round(np.r_[np.linspace(wm_lo, wm_hi, 16),
                                  suggested[(suggested >= wm_lo) & (suggested <= wm_hi)]], 3))
    return _padded(w0s), _padded(wms)


def _padded(rows: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(rows), max(r.size for r in rows)), np.nan)
    for i, r in enumerate(rows):
        out[i, :r.size] = r
    return out


def _distinct(log_observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's distinct values (models, d; shorter rows padded with copies of their largest) and the index of
    each entry among them (models, depth): a network's blocks share a few widths (one per stage), so its width
    terms are computed once per distinct width."""
    order = np.argsort(log_observed, axis=1, kind="stable")
    ordered = np.take_along_axis(log_observed, order, axis=1)
    rank = np.cumsum(np.c_[np.zeros((ordered.shape[0], 1), bool), ordered[:, 1:] != ordered[:, :-1]], axis=1)
    which = np.empty_like(rank)
    np.put_along_axis(which, order, rank, axis=1)
    distinct = np.repeat(ordered[:, -1:], rank.max() + 1, axis=1)
    distinct[np.arange(rank.shape[0])[:, None], rank] = ordered
    return distinct, which


def _score_grid(log_observed: tuple[np.ndarray, np.ndarray], w0: np.ndarray, wa: np.ndarray, wm: np.ndarray, q: int,
                keep: int, cap: np.ndarray | None = None) -> np.ndarray:
    """e_fit of every (w0, wa, wm) of each model's grid that can be among its ``keep`` lowest scores, +inf for
    the others: (models, |w0|, |wa|, |wm|) from per-model values (models, n) of w0, wa and wm (wa, wm rounded)
    and log widths (``_distinct``: (models, d) values, (models, depth) indices). NaN entries (padding of shorter
    grids) score +inf. ``cap``: per model, a score known to be in the grid (a refinement grid's centre), or inf.

    Most candidates are far from a model's best, so they are bounded before they are scored (branch and bound):
    the grid is cut into cells of one w0, one wm and up to ``_CELL_WA`` neighbouring wa values. A block's exponent
    k_j = round(log(u_j / w0) / log(wm)) grows with wa, so within a cell it lies between its values at the
    cell's smallest and largest wa (widened by 1e-9 against rounding); the block's term |log(width_k /
    observed_j)| is smallest at the level nearest the observed width (terms fall, then rise, with k), clamped
    to that range; the mean of these minima bounds every score in the cell from below. Without a finite ``cap``,
    the ``keep`` cells of lowest bound are scored first and the ``keep``-th lowest score among them is the cap;
    then only the cells whose bound does not exceed the cap (by more than 1e-9) are scored. Scored candidates
    get exactly the scores of scoring the whole grid (the same operations on the same values), so the order and
    the ties among the lowest are unchanged."""
    valid = ~np.isnan(w0)[:, :, None, None] | np.zeros(wm.shape[1], bool)
    valid &= ~np.isnan(wm)[:, None, None, :]  # (models, w0, 1, wm)
    w0 = np.where(np.isnan(w0), w0[:, :1], w0)
    wm = np.where(np.isnan(wm), wm[:, :1], wm)
    log_distinct, which = log_observed
    models, depth = which.shape
    n_d = log_distinct.shape[1]
    n_w0, n_wa, n_wm = w0.shape[1], wa.shape[1], wm.shape[1]
    cells = -(-n_wa // _CELL_WA)
    size = -(-n_wa // cells)  # wa values per cell, padded with copies of the last (scored +inf)
    wa = np.concatenate([wa, np.repeat(wa[:, -1:], cells * size - n_wa, axis=1)], axis=1)
    members = np.argsort(wa, axis=1, kind="stable").reshape(models, cells, size)  # cells of neighbouring wa
    j = np.arange(depth)
    # log(u_j / w0) with u_j = w0 + wa * j, computed as the direct prediction does: (models, w0, wa, block)
    w0_4d = w0[:, :, None, None]
    log_growth = np.log((w0_4d + wa[:, None, :, None] * j) / w0_4d)
    log_wm = np.log(wm)
    cell_wa = np.take_along_axis(wa, members.reshape(models, -1), axis=1).reshape(models, cells, size)
    ends = [np.log((w0_4d + edge[:, None, :, None] * j) / w0_4d)[:, :, :, None, :] / log_wm[:, None, None, :, None]
            for edge in (cell_wa.min(axis=2), cell_wa.max(axis=2))]  # (models, w0, cell, wm, block)
    low = np.maximum(np.ceil(ends[0] - 0.5 - 1e-9), 0).astype(np.intp)
    high = np.floor(ends[1] + 0.5 + 1e-9).astype(np.intp)
    levels = int(high.max()) + 1
    exponents = np.tile(np.arange(levels, dtype=float), (models, n_wm, 1))  # contiguous, as k is
    widths = q * np.round(w0[:, :, None, None] * (wm[:, :, None] ** exponents)[:, None] / q)  # (models, w0, wm, k)
    terms = np.abs(np.log(widths)[..., None] - log_distinct[:, None, None, None, :])
    # Block j's term at level k of (model, w0, wm) is terms.flat[k * n_d + offset[model, w0, wm, j]].
    base = ((np.arange(models)[:, None] * n_w0 + np.arange(n_w0)) * n_wm)[:, :, None] + np.arange(n_wm)
    offset = base[..., None] * (levels * n_d) + which[:, None, None, :]  # (models, w0, wm, block)
    nearest = terms.argmin(axis=3).ravel().take(base[..., None] * n_d + which[:, None, None, :])  # (.., block)
    nearest = np.clip(nearest[:, :, None], low, high)  # (models, w0, cell, wm, block)
    nearest *= n_d
    nearest += offset[:, :, None]
    bound = np.where(valid, np.mean(terms.ravel().take(nearest), axis=-1), np.inf).reshape(models, -1)

    scores = np.full((models, n_w0, cells * size, n_wm), np.inf)

    def score(model: np.ndarray, cell: np.ndarray) -> None:
        a, c, m = np.unravel_index(cell, (n_w0, cells, n_wm))
        wa_index = members[model, c]  # (cells, size)
        k = log_growth[model[:, None], a[:, None], wa_index]  # (cells, size, block)
        k /= log_wm[model, m][:, None, None]
        np.round(k, out=k)
        k *= n_d
        k += offset[model, a, m][:, None]  # exact: small integers
        scores[model[:, None], a[:, None], wa_index, m[:, None]] = np.mean(terms.ravel().take(k.astype(np.intp)),
                                                                          axis=-1)
        scores[:, :, n_wa:] = np.inf  # the padding copies

    # The keep cells of lowest bound are scored first where no cap is given (or it is infinite).
    first = np.zeros_like(bound, dtype=bool)
    uncapped = np.arange(models) if cap is None else np.flatnonzero(np.isinf(cap))
    first[uncapped[:, None], np.argpartition(bound[uncapped], keep - 1, axis=1)[:, :keep]] = True
    first &= np.isfinite(bound)
    score(*np.nonzero(first))
    lowest = np.full(models, np.inf)
    if uncapped.size:
        lowest[uncapped] = np.partition(scores[uncapped].reshape(uncapped.size, -1), keep - 1, axis=1)[:, keep - 1]
    cap = lowest if cap is None else np.minimum(cap, lowest)
    todo = (bound <= cap[:, None] + 1e-9) & ~first
    score(*np.nonzero(todo))
    return scores[:, :, :n_wa]

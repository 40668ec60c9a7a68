"""EDF + flops normalisation + 10^4-sample bootstrap on 10,000 models, on one core; and the bootstrap
vectorised (a (B, m) index matrix, argmin) vs one resample at a time (the pycls loop), side by side. With
``--report``: the whole ``regnet-space report`` on 10,000 sampled models, and the quantized linear fit
vectorised over models vs one model at a time (benchmarks/plain_linear_fit.py), side by side.

    python benchmarks/analysis_speed.py [--n 10000] [--samples 10000] [--repeats 5]
    python benchmarks/analysis_speed.py --report [--n 10000] [--fit-n 500] [--repeats 3] [--csv results.csv]

Each repeat times, interleaved: the whole analysis (plain EDFs with scipy's KS test, normalised EDFs over 10
flops bins with the 1,000-permutation KS test, and the bootstrap of 10 parameter/complexity columns), the
vectorised bootstrap alone, and the loop bootstrap alone. Medians over repeats and the ratio are printed.

``--report`` samples n models with the real sampler (half AnyNetX_A, half RegNetX, 360-400 MFLOPs at 224 px;
errors synthetic), writes them as a results CSV and times, per repeat: ``regnet-space report`` on it (a
fresh process, default settings) on one core, and again on all N cores the script may use (the default
``--jobs N``: the spaces' comparison and the linear fits in N - 1 worker processes while the report draws);
the vectorised fit of every model; and, on the first ``--fit-n`` models, the vectorised fit and the per-model
fit interleaved. It checks that the two fits agree (same w0, wa, wm, widths; e_fit to 1e-9) and prints
medians and the ratio; and it times the start-up of ``regnet-space edf results.csv --json`` (a fresh process
importing the CLI, without torch or pandas) against the whole command.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from plain_linear_fit import plain_fit  # noqa: E402
from regnet_space.analysis.bootstrap import bootstrap_winners, good_ranges  # noqa: E402
from regnet_space.analysis.edf import compare  # noqa: E402
from regnet_space.analysis.linear_fit import fit_many  # noqa: E402
from regnet_space.models.complexity import complexity  # noqa: E402
from regnet_space.models.spec import AnyNetSpec  # noqa: E402
from regnet_space.spaces.sampling import sample_models  # noqa: E402


def population(n: int, seed: int = 0) -> pd.DataFrame:
    """n synthetic RegNet-like models in two spaces: parameters, complexity and an error that depends on them."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(12, 29, n)
    w0 = 8 * rng.integers(1, 33, n)
    wa = np.round(np.exp(rng.uniform(np.log(8), np.log(256), n)), 1)
    wm = np.round(rng.uniform(2.0, 3.0, n), 3)
    group_width = 2 ** rng.integers(0, 6, n)
    flops = np.exp(rng.uniform(np.log(2e8), np.log(6e8), n))
    error = 40 - 3 * np.log(flops / 2e8) + 5 * np.abs(np.log(wm / 2.5)) + rng.normal(0, 1, n)
    return pd.DataFrame({"space": np.where(np.arange(n) % 2, "regnetx", "anynetx_e"), "error": error,
                         "flops": flops, "params": flops / 80, "acts": np.sqrt(flops) * 300, "depth": depth,
                         "w0": w0, "wa": wa, "wm": wm, "group_width": group_width})


def loop_winners(errors: np.ndarray, samples: int, fraction: float, seed: int) -> np.ndarray:
    """The plain way: one resample, one argmin, per iteration."""
    rng = np.random.default_rng(seed)
    m = max(1, int(round(fraction * errors.size)))
    winners = np.empty(samples, dtype=np.int64)
    for b in range(samples):
        draw = rng.integers(0, errors.size, m)
        winners[b] = draw[np.argmin(errors[draw])]
    return winners


def analysis(frame: pd.DataFrame, samples: int) -> None:
    compare(frame)
    compare(frame, normalize="flops", bins=10, permutations=1000)
    good_ranges(frame, samples=samples, seed=0)


def sampled_results(n: int, seed: int = 0) -> pd.DataFrame:
    """n models drawn by the real sampler (half AnyNetX_A, half RegNetX, 360-400 MFLOPs at 224x224), with the
    columns a study exports (spec JSON, complexity, drawn parameters) and a synthetic error."""
    rng = np.random.default_rng(seed)
    rows = []
    for space, count in (("anynetx_a", n - n // 2), ("regnetx", n // 2)):
        for index, model in enumerate(sample_models(space, count, seed=seed, windows={"flops": (360e6, 400e6)})):
            cx = complexity(model.spec)
            rows.append({"space": space, "model_index": index, "flops": cx.flops, "params": cx.params,
                         "acts": cx.acts, "mac": cx.mac, "spec": model.spec.to_json(), **model.params})
    frame = pd.DataFrame(rows)
    offset = np.where(frame["space"] == "regnetx", 0.0, 2.0)
    frame["error"] = 30 + offset - 4 * np.log(frame["flops"] / 360e6) + rng.normal(0, 1.5, len(frame))
    return frame


def report_speed(args: argparse.Namespace) -> None:
    """The report on n sampled models, the vectorised linear fit vs the per-model one, and edf's start-up."""
    frame = sampled_results(args.n)
    widths = [json_widths(spec) for spec in frame["spec"]]
    sample = widths[:: max(1, len(widths) // args.fit_n)][: args.fit_n]  # both spaces, every depth
    vectorised = fit_many(sample)
    plain = [plain_fit(w) for w in sample]
    for v, p in zip(vectorised, plain):
        assert (v.w0, v.wa, v.wm, v.widths) == (p.w0, p.wa, p.wm, p.widths) and abs(v.e_fit - p.e_fit) <= 1e-9
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(args.csv or Path(tmp) / "results.csv")
        frame.to_csv(csv, index=False)
        report_command = [sys.executable, "-m", "regnet_space", "report", str(csv), "--out", str(Path(tmp) / "r.html")]
        report, spread, fits, fit_v, fit_p = [], [], [], [], []
        one_core = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        for _ in range(args.repeats):
            report.append(timed(report_command))  # a fresh process on one core: --jobs defaults to 1
            if one_core is not None and len(args.cores) > 1:  # and on every core: --jobs defaults to all of them
                os.sched_setaffinity(0, args.cores)
                spread.append(timed(report_command))
                os.sched_setaffinity(0, one_core)
            t = time.perf_counter()
            fit_many(widths)
            fits.append(time.perf_counter() - t)
            t = time.perf_counter()
            fit_many(sample)
            fit_v.append(time.perf_counter() - t)
            t = time.perf_counter()
            for w in sample:
                plain_fit(w)
            fit_p.append(time.perf_counter() - t)
        command = [sys.executable, "-m", "regnet_space", "edf", str(csv), "--json"]
        imports = [sys.executable, "-c", "import sys, regnet_space.cli, regnet_space.commands.edf, "
                   "regnet_space.analysis.table, regnet_space.analysis.edf; "
                   "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"]
        whole = [timed(command) for _ in range(args.repeats)]
        start = [timed(imports) for _ in range(args.repeats)]
    r, f, v, p = (statistics.median(x) for x in (report, fits, fit_v, fit_p))
    depths = sorted(len(w) for w in widths)
    print(f"{len(frame)} sampled models (depths {depths[0]}-{depths[-1]}, median {depths[len(depths) // 2]}), "
          f"1 core, median of {args.repeats}")
    print(f"regnet-space report (a fresh process, defaults) on 1 core: {r:.2f} s (target < 10 s)")
    if spread:
        print(f"regnet-space report (a fresh process, defaults) on {len(args.cores)} cores (the comparison and "
              f"the linear fits in {len(args.cores) - 1} worker process(es) while the report draws): "
              f"{statistics.median(spread):.2f} s")
    print(f"linear fit of all {len(widths)} models, vectorised: {f:.2f} s ({len(widths) / f:.0f} models/s)")
    print(f"linear fit of {len(sample)} models: vectorised {v:.3f} s, per model {p:.3f} s, ratio {p / v:.1f}x; "
          f"same w0, wa, wm, widths and e_fit (to 1e-9) for all {len(sample)}")
    print(f"regnet-space edf results.csv --json: {statistics.median(whole):.2f} s in all, of which start-up "
          f"(python + imports, no torch) {statistics.median(start):.2f} s (target < 0.5 s)")


def timed(command: list[str]) -> float:
    """Seconds ``command`` took to run, as a fresh process (start-up and imports included)."""
    t = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - t


def json_widths(spec_json: str) -> list[int]:
    return AnyNetSpec.from_json(spec_json).block_widths()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--report", action="store_true", help="time the report and the linear fit (see above)")
    parser.add_argument("--fit-n", type=int, default=500, help="models fitted both ways (--report)")
    parser.add_argument("--csv", help="keep the sampled results table here (--report), e.g. to profile the report")
    args = parser.parse_args()
    args.cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(args.cores)[0]})  # one core
    if args.report:
        report_speed(args)
        return
    frame = population(args.n)
    errors = frame["error"].to_numpy()
    assert np.array_equal(bootstrap_winners(errors, samples=512, seed=1), loop_winners(errors, 512, 0.25, 1))

    whole, vectorised, loop = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        analysis(frame, args.samples)
        whole.append(time.perf_counter() - t)
        t = time.perf_counter()
        bootstrap_winners(errors, samples=args.samples, seed=0)
        vectorised.append(time.perf_counter() - t)
        t = time.perf_counter()
        loop_winners(errors, args.samples, 0.25, 0)
        loop.append(time.perf_counter() - t)

    w, v, lp = (statistics.median(x) for x in (whole, vectorised, loop))
    print(f"{args.n} models, {args.samples} bootstrap samples, 1 core, median of {args.repeats}")
    print(f"EDF + normalisation (with KS tests) + bootstrap of 10 columns: {w:.3f} s")
    print(f"bootstrap winners alone: vectorised {v:.3f} s, loop {lp:.3f} s, ratio {lp / v:.1f}x")


if __name__ == "__main__":
    main()

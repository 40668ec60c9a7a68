"""How reproducible is a model's stored latency? The same models measured in 5 separate processes (as 5 studies
would), by this tree's protocol and optionally by another commit's, beside optional CPU hogs.

    PYTHONPATH=. .venv/bin/python benchmarks/latency_stability.py [--runs 5] [--hogs 2] [--before DIR]

Each run is a fresh process that does what a study worker does: sets its torch threads (this tree: 1, the
workers' default; --before: the old `study run --workers 1` default, every core) and calls ``measure_latency``
at batch 1 with its defaults. Runs alternate between the trees. Printed per model and tree: the latency each
run would store (this tree: the fastest pass; the old protocol: the median), the coefficient of variation
across runs (standard deviation / mean; issue 26's target: <= 15%, or flagged), how many runs the protocol
marked unreliable, the CV over the runs it trusted, and the CV of the runs' medians for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

ORIGINAL_ENV = dict(os.environ)  # before this package sets its thread variables: what --before gets
HERE = Path(__file__).resolve().parent.parent
MODELS = ["depth=6,w0=56,wa=28.7,wm=1.543,group_width=8",  # 2.2 MFLOPs, the proxy-fidelity sample's median
          "depth=10,w0=48,wa=36,wm=2.5,group_width=16"]
PROBE = """
import json, os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from regnet_space.models.resolve import parse_regnet
from regnet_space.proxy.latency import measure_latency
out = []
for text in sys.argv[2:]:
    spec = parse_regnet(text).to_spec(resolution=28, in_channels=1, num_classes=10)
    result = measure_latency(spec, batch_size=1)
    # what a study stores: the protocol's latency (this tree: the fastest pass; before: the median)
    out.append({"stored_ms": getattr(result, "latency_ms", result.median_ms), "median_ms": result.median_ms,
                "reliable": getattr(result, "reliable", None)})
print(json.dumps(out))
"""


def run(tree: Path, threads: int, models: list[str]) -> list[dict]:
    result = subprocess.run([sys.executable, "-c", PROBE, str(threads), *models], capture_output=True, text=True,
                            env={**ORIGINAL_ENV, "PYTHONPATH": str(tree)}, cwd=tree, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes beside (default 0)")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare against")
    parser.add_argument("--models", nargs="+", default=MODELS, help="RegNet parameters (K=V,...) at 28x28x1")
    args = parser.parse_args()
    trees = ([("before", args.before.resolve(), os.cpu_count() or 1)] if args.before else []) + [("now", HERE, 1)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the hogs below
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    found: dict[str, list[list[dict]]] = {label: [] for label, _, _ in trees}
    try:
        for i in range(args.runs):
            for label, tree, threads in trees:
                found[label].append(run(tree, threads, args.models))
                print(f"  run {i + 1} {label}: " + ", ".join(f"{r['stored_ms']:.2f} ms" for r in found[label][-1]),
                      flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(f"{args.runs} runs per tree, {args.hogs} hog(s), load average {os.getloadavg()[0]:.1f} at the end")
    for m, model in enumerate(args.models):
        for label, _, threads in trees:
            runs = [r[m] for r in found[label]]
            stored = [r["stored_ms"] for r in runs]
            trusted = [r["stored_ms"] for r in runs if r["reliable"] is not False]
            flags = "n/a" if runs[0]["reliable"] is None else f"{sum(r['reliable'] is False for r in runs)}/{len(runs)}"
            print(f"{model:<45} {label:<6} {threads} thr: stored {' '.join(f'{v:.2f}' for v in stored)} ms; "
                  f"CV {cv(stored):.1%}; unreliable {flags}; CV of trusted {cv(trusted):.1%}; "
                  f"CV of medians {cv([r['median_ms'] for r in runs]):.1%}")


if __name__ == "__main__":
    main()

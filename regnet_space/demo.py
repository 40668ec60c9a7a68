"""``make demo``: the main job on a fresh machine.

Runs the quickstart study (Fashion-MNIST, AnyNetX_A vs RegNetX) with one worker per core, then writes the
EDF plot, the results table, the HTML report and the best RegNet config, and names every output file.
A rerun resumes the study and retrains nothing that is complete.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .cli import main as cli

# Shipped inside the package (experiments/quickstart.toml links to it) so an installed wheel runs the demo too.
SPEC = Path(__file__).resolve().parent / "experiments" / "quickstart.toml"
OUT = Path("runs") / "quickstart"


def shown_spec() -> Path:
    """The spec to name in hints: a clone's experiments/quickstart.toml (what the README names), else the
    packaged copy (an installed wheel)."""
    clone = Path("experiments") / "quickstart.toml"
    return clone if clone.is_file() else SPEC


def run(*argv: str) -> None:
    code = cli(list(argv))
    if code != 0:
        print(f"demo: `regnet-space {' '.join(argv)}` failed (exit {code})", file=sys.stderr)
        sys.exit(code)


def main() -> int:
    start = time.time()
    spec, out = str(SPEC), str(OUT)
    workers = str(max(1, os.cpu_count() or 1))
    run("study", "run", spec, "--workers", workers, "--dir", out)
    outputs = {
        "results table": OUT / "results.csv",
        "EDF plot": OUT / "edf.png",
        "normalised EDF plot": OUT / "edf_flops.png",
        "HTML report": OUT / "report.html",
        "best RegNet config": OUT / "best.json",
    }
    run("study", "export", spec, "--dir", out, "--out", str(outputs["results table"]))
    run("edf", spec, "--dir", out, "--plot", str(outputs["EDF plot"]))
    # no --bins: the figure takes its bins by the rule the report's equal-flops comparison takes (analysis/bins.py)
    run("edf", spec, "--dir", out, "--normalize", "flops", "--plot", str(outputs["normalised EDF plot"]))
    run("report", spec, "--dir", out, "--out", str(outputs["HTML report"]), "--figures", str(OUT / "figures"))
    run("best", spec, "--dir", out, "--out", str(outputs["best RegNet config"]), "--verify")
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min. Outputs:")
    for what, path in outputs.items():
        print(f"  {what:<22} {path}")
    print(f"  {'figures (PNG + SVG)':<22} {OUT / 'figures'}/")
    print(f"  {'study storage':<22} {OUT / 'study.journal'}  (regnet-space study status {shown_spec()} --dir {out})")
    print(f"Next: regnet-space describe {outputs['best RegNet config']}; regnet-space train {outputs['best RegNet config']} --epochs 10")
    return 0


if __name__ == "__main__":
    sys.exit(main())

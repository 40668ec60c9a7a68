"""Evaluation cost: the trainer's ``predict`` (inference_mode, batches of ProxyConfig.eval_batch_size = 256) vs
the evaluation it replaced (no_grad, batches of 2,000), interleaved, on the same trained model and images.

    PYTHONPATH=. .venv/bin/python benchmarks/eval_speed.py [--regnet K=V,...] [--images 10000] [--repeats 5]
        [--threads 1]

The model is the train_throughput default (2.2 MFLOPs), trained by the default proxy first; precision and
memory format are the trainer's (bf16 autocast where the CPU has it, channels_last). Both ways must predict the
same class for every image (the script stops otherwise); printed: the median seconds of each over --images
validation images and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regnet_space.models.resolve import parse_regnet  # noqa: E402
from regnet_space.proxy.data import load_dataset  # noqa: E402
from regnet_space.proxy.train import ProxyConfig, _Run, _use_bf16  # noqa: E402
from train_throughput import DEFAULT_MODEL  # noqa: E402


def old_predict(run: _Run, x: torch.Tensor) -> torch.Tensor:
    """The evaluation before issue 26: no_grad, batches of 2,000."""
    run.model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 2000):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=run.bf16):
                out.append(run.model(x[i:i + 2000].contiguous(memory_format=run.memory_format)).argmax(1))
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regnet", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", val_size=args.images)
    spec = parse_regnet(args.regnet).to_spec(resolution=28, in_channels=1, num_classes=10)
    config = ProxyConfig()
    torch.manual_seed(0)
    run = _Run(spec, data, config, torch.device("cpu"), _use_bf16(config.precision, torch.device("cpu"), spec), True, 0)
    run.train(time.perf_counter(), None, False)
    x = data.val_x
    times: dict[str, list[float]] = {"no_grad, batch 2000 (before)": [], "predict (now)": []}
    for _ in range(args.repeats):
        for name, way in zip(times, (lambda: old_predict(run, x), lambda: run.predict(x))):
            start = time.perf_counter()
            predicted = way()
            times[name].append(time.perf_counter() - start)
            if name.startswith("no_grad"):
                reference = predicted
            elif not torch.equal(predicted, reference):
                sys.exit("the two evaluations disagree")
    before, now = (statistics.median(v) for v in times.values())
    print(f"{len(x)} images, {args.threads} thread(s), bf16={run.bf16}; same predictions for all")
    for name, values in times.items():
        print(f"{name:>30}: median {statistics.median(values):.3f} s ({1000 * statistics.median(values) / len(x):.3f} "
              f"ms/image)")
    print(f"ratio before/now: {before / now:.2f}x")


if __name__ == "__main__":
    main()

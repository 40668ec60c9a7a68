"""Kernel-level options for small CNNs on the CPU (issue 26, item 4), each a ratio to the trainer's own step,
side by side in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/kernel_options.py [--regnet K=V,...] [--steps 40] [--repeats 5]
        [--threads 1]

One training step as the trainer takes it (a batch of 128 Fashion-MNIST images, channels_last, the trainer's
precision rule, SGD with Nesterov momentum), in these forms:
- ``eager``: the trainer's step as it is, the baseline;
- ``eager NCHW``: the same in the default memory format (what channels_last buys the grouped convs);
- ``compiled``: ``torch.compile`` (inductor), which fuses BN + ReLU, the residual add and the rest of the
  elementwise work of every block into generated C++; its one-off cost is the first step (compiling forward
  and backward; inductor keeps what it generated in an on-disk cache, so run with a fresh
  ``TORCHINDUCTOR_CACHE_DIR`` for the cold cost) and its steady step is timed after warm-up;
- ``compiled, same shapes``: a second model of the same architecture (fresh weights) compiled in the same
  process afterwards: the one-off cost a cache across the models of one shape would leave.
The steady forms are timed in interleaved rounds (``--repeats``), ``--steps`` steps each, median per step.
Printed: each form's median step and its ratio to eager, each compiled form's one-off seconds, and the steps the
one-off cost needs to pay for itself (one-off / time saved per step) next to the default proxy's steps per
model: an option pays only when that break-even is well below the proxy's steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regnet_space import AnyNet, complexity  # noqa: E402
from regnet_space.models.resolve import parse_regnet  # noqa: E402
from regnet_space.proxy.data import load_dataset  # noqa: E402
from regnet_space.proxy.train import ProxyConfig, _use_bf16  # noqa: E402

DEFAULT_MODEL = "depth=6,w0=56,wa=28.7,wm=1.543,group_width=8"  # train_throughput.py's: 2.2 MFLOPs at 28x28


class Step:
    """One form of the training step: a model, its optimiser and the step as a callable."""

    def __init__(self, spec, *, channels_last: bool, bf16: bool, compiled: bool, seed: int) -> None:
        torch.manual_seed(seed)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = AnyNet(spec).to(memory_format=self.format).train()
        self.forward = torch.compile(self.model) if compiled else self.model
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                         weight_decay=5e-5)
        self.bf16 = bf16

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss = F.cross_entropy(self.forward(x.contiguous(memory_format=self.format)), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def timed(step: Step, batches: list, steps: int) -> float:
    """Median seconds per step over ``steps`` steps."""
    times = []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        tick = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regnet", default=DEFAULT_MODEL)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist")
    spec = parse_regnet(args.regnet).to_spec(resolution=data.resolution, in_channels=data.in_channels,
                                             num_classes=data.num_classes)
    config = ProxyConfig()
    bf16 = _use_bf16(config.precision, torch.device("cpu"), spec)
    n_train = round(config.train_fraction * len(data.train_y))
    proxy_steps = config.epochs * (n_train // config.batch_size)
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(8):
        index = torch.randint(0, n_train, (config.batch_size,), generator=generator)
        batches.append((data.train_x[index], data.train_y[index]))
    print(f"model {args.regnet}: {complexity(spec).flops / 1e6:.2f} MFLOPs, precision {'bf16' if bf16 else 'fp32'}, "
          f"{args.threads} thread(s); the default proxy takes {proxy_steps} steps per model", flush=True)

    forms = {"eager": Step(spec, channels_last=True, bf16=bf16, compiled=False, seed=0),
             "eager NCHW": Step(spec, channels_last=False, bf16=bf16, compiled=False, seed=0)}
    one_off = {}
    for name, seed in (("compiled", 0), ("compiled, same shapes", 1)):
        forms[name] = Step(spec, channels_last=True, bf16=bf16, compiled=True, seed=seed)
        x, y = batches[0]
        tick = time.perf_counter()
        forms[name](x, y)
        one_off[name] = time.perf_counter() - tick
        print(f"  {name}: first step (compiling) {one_off[name]:.1f} s", flush=True)
    for step in forms.values():
        timed(step, batches, 5)  # warm-up
    medians: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.repeats):
        for name, step in forms.items():
            medians[name].append(timed(step, batches, args.steps))
        print(f"  round {round_ + 1}: " + ", ".join(f"{n} {m[-1] * 1e3:.1f} ms" for n, m in medians.items()),
              flush=True)
    eager = statistics.median(medians["eager"])
    print(f"{'form':<24}{'ms/step':>10}{'vs eager':>10}{'one-off s':>11}{'break-even steps':>18}")
    for name, values in medians.items():
        ms = statistics.median(values)
        saved = eager - ms
        cost = one_off.get(name)
        even = "" if cost is None else (f"{cost / saved:,.0f}" if saved > 0 else "never")
        print(f"{name:<24}{ms * 1e3:>10.2f}{eager / ms:>9.2f}x{'' if cost is None else f'{cost:.1f}':>11}"
              f"{even:>18}")
    print(f"(the default proxy: {proxy_steps} steps per model)")


if __name__ == "__main__":
    main()

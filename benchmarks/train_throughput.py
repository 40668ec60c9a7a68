"""Training throughput: a plain tutorial PyTorch loop vs regnet_space.proxy.train, side by side in one run.

    .venv/bin/python benchmarks/train_throughput.py [--regnet K=V,...] [--images 6144] [--repeats 5] [--device cpu]
        [--threads N] [--precision auto|fp32|bf16] [--ablation]

(a) plain: DataLoader(TensorDataset) with shuffle, batch 128, fp32, default memory format, default threads,
    SGD Nesterov, as the PyTorch tutorials teach it.
(b) ours: ``train_model`` with the default proxy settings (same batch size, same optimiser), one epoch.
Both train the same model on the same --images Fashion-MNIST images, interleaved --repeats times; each pass
is timed over the training steps only (no model building, no evaluation). Printed: median images/s of each,
the median of the per-repeat ratios, and achieved GFLOP/s next to fp32 and bf16 matmul peaks measured in
this run. Training FLOPs per image = 3 x forward MACs x 2 (backward costs about twice the forward; one
multiply-add is 2 FLOPs), with forward MACs from regnet_space.models.complexity.

--ablation instead times our trainer in its four settings of memory format x precision, interleaved, which is
how the defaults (channels_last, bf16 autocast where the CPU has native bf16) were chosen.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regnet_space import AnyNet, complexity  # noqa: E402
from regnet_space.models.resolve import parse_regnet  # noqa: E402
from regnet_space.proxy.data import load_dataset  # noqa: E402
from regnet_space.proxy.train import ProxyConfig, train_model  # noqa: E402

# A RegNetX of 2.2 MFLOPs at 28x28, the median model of the sample the default proxy was chosen on
# (analysis/proxy_fidelity, flops window 1-3 M): model 5 there.
DEFAULT_MODEL = "depth=6,w0=56,wa=28.7,wm=1.543,group_width=8"


def plain_loop(spec, x, y, batch_size: int, device: str) -> float:
    """Images/s of one epoch of the tutorial loop over (x, y)."""
    model = AnyNet(spec).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=True)
    model.train()
    seen = 0
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(labels)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def matmul_peak(dtype: torch.dtype, device: str, n: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of an n x n matmul in ``dtype`` (best of a few timings)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(3):
        torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n**3 / best / 1e9


def ablation(spec, dataset, config: ProxyConfig, args: argparse.Namespace) -> None:
    """Median images/s of our trainer with each memory format x precision, interleaved."""
    variants = {f"{'channels_last' if cl else 'NCHW'} + {p}": config.replace(channels_last=cl, precision=p)
                for cl in (False, True) for p in ("fp32", "bf16")}
    speeds: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, variant in variants.items():
            speeds[name].append(train_model(spec, dataset, variant, seed=repeat, device=args.device,
                                            progress=False).images_per_s)
    base = statistics.median(speeds["NCHW + fp32"])
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"{name:>22}: median {median:8.0f} img/s  ({median / base:.2f}x NCHW + fp32; "
              f"runs {', '.join(f'{v:.0f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regnet", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=6144, help="training images per timed pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads for both ways (default: torch's own)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="our trainer's precision (fp32: the gain is the trainer's, not bf16's)")
    parser.add_argument("--ablation", action="store_true", help="compare our trainer's speed settings instead")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = load_dataset("fashion-mnist", device=args.device)
    spec = parse_regnet(args.regnet).to_spec(resolution=28, in_channels=1, num_classes=10)
    macs = complexity(spec).flops
    train_flops_per_image = 3 * macs * 2
    config = ProxyConfig(epochs=1, train_fraction=args.images / len(dataset.train_y), precision=args.precision)
    x, y = dataset.train_x[: args.images], dataset.train_y[: args.images]
    print(f"model {args.regnet}: {macs / 1e6:.2f} MFLOPs (multiply-adds) forward at 28x28, "
          f"{train_flops_per_image / 1e6:.1f} MFLOP per training image; {args.images} images per pass; "
          f"device {args.device}, {torch.get_num_threads()} threads")

    if args.ablation:
        ablation(spec, dataset, config, args)
        return
    plain, ours, ratios = [], [], []
    for repeat in range(args.repeats):
        a = plain_loop(spec, x, y, config.batch_size, args.device)
        result = train_model(spec, dataset, config, seed=repeat, device=args.device, progress=False)
        b = result.images_per_s
        plain.append(a)
        ours.append(b)
        ratios.append(b / a)
        print(f"  repeat {repeat + 1}: plain {a:8.0f} img/s   ours {b:8.0f} img/s "
              f"({result.precision}, channels_last={result.channels_last})   ratio {b / a:.2f}x", flush=True)

    fp32_peak = matmul_peak(torch.float32, args.device)
    bf16_peak = matmul_peak(torch.bfloat16, args.device)
    print(f"matmul peaks (1024^3): fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s")
    for name, values in (("plain", plain), ("ours", ours)):
        median = statistics.median(values)
        gflops = median * train_flops_per_image / 1e9
        print(f"{name:>5}: median {median:8.0f} img/s = {gflops:5.1f} GFLOP/s "
              f"({100 * gflops / fp32_peak:.1f}% of fp32 peak, {100 * gflops / bf16_peak:.1f}% of bf16 peak)")
    print(f"ratio ours/plain: median {statistics.median(ratios):.2f}x over {args.repeats} interleaved repeats "
          f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")


if __name__ == "__main__":
    main()

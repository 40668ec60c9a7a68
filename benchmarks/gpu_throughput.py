"""The CUDA side of the throughput benchmarks: the trainer vs a plain PyTorch loop, and how many study workers
one GPU should run. Skipped, with a message, where torch sees no CUDA device. Under 5 minutes on one GPU with
the defaults.

    PYTHONPATH=. .venv/bin/python benchmarks/gpu_throughput.py [--device cuda:0] [--repeats 3] [--images 20480]
        [--workers 1 2 4] [--models-per-worker 4]

(a) trainer vs plain: ``train_throughput.plain_loop`` (DataLoader, fp32, NCHW) against ``train_model`` with the
    default proxy (bf16 autocast and channels_last on CUDA) and with ``precision=fp32``, interleaved, on the same
    --images Fashion-MNIST images held on the GPU; images/s over the training steps, median of --repeats.
(b) workers per GPU: K processes (K in --workers) share the GPU, each loading the data onto it and training
    --models-per-worker models of the default proxy one after another (1 CPU thread each, as study workers);
    printed: models/s of the K together, wall time from the first start to the last finish (CUDA start-up
    included, as in a study), and the speed-up over one worker. Small models leave a GPU idle between kernel
    launches, so several workers can overlap; this measures how many pay.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import DEFAULT_MODEL, plain_loop  # noqa: E402  (the same plain loop as on the CPU)


def _spec(regnet: str):
    from regnet_space.models.resolve import parse_regnet

    return parse_regnet(regnet).to_spec(resolution=28, in_channels=1, num_classes=10)


def trainer_vs_plain(args: argparse.Namespace) -> None:
    from regnet_space.proxy.data import load_dataset
    from regnet_space.proxy.train import ProxyConfig, train_model

    dataset = load_dataset("fashion-mnist", device=args.device)
    spec = _spec(args.regnet)
    config = ProxyConfig(train_fraction=args.images / len(dataset.train_y))
    x, y = dataset.train_x[:args.images], dataset.train_y[:args.images]
    speeds: dict[str, list[float]] = {"plain (fp32, NCHW)": [], "ours (default: bf16, channels_last)": [],
                                      "ours (fp32, channels_last)": []}
    for repeat in range(args.repeats + 1):  # the first round warms up CUDA and cuDNN and is not counted
        runs = [plain_loop(spec, x, y, config.batch_size, args.device),
                train_model(spec, dataset, config, seed=repeat, device=args.device, progress=False).images_per_s,
                train_model(spec, dataset, config.replace(precision="fp32"), seed=repeat, device=args.device,
                            progress=False).images_per_s]
        if repeat:
            for values, speed in zip(speeds.values(), runs):
                values.append(speed)
    plain = statistics.median(speeds["plain (fp32, NCHW)"])
    for name, values in speeds.items():
        median = statistics.median(values)
        print(f"{name:>38}: median {median:9.0f} img/s ({median / plain:.2f}x plain)")


def _worker(device: str, regnet: str, models: int, ready, go) -> None:
    torch.set_num_threads(1)
    from regnet_space.proxy.data import load_dataset
    from regnet_space.proxy.train import ProxyConfig, train_model

    dataset = load_dataset("fashion-mnist", device=device)
    ready.release()
    go.wait()
    for seed in range(models):
        train_model(_spec(regnet), dataset, ProxyConfig(), seed=seed, device=device, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def workers_per_gpu(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    rates = {}
    for k in args.workers:
        ready, go = context.Semaphore(0), context.Event()
        processes = [context.Process(target=_worker, args=(args.device, args.regnet, args.models_per_worker, ready, go))
                     for _ in range(k)]
        for p in processes:
            p.start()
        for _ in processes:
            ready.acquire()  # data loaded everywhere: time the training only
        start = time.perf_counter()
        go.set()
        for p in processes:
            p.join()
        wall = time.perf_counter() - start
        if any(p.exitcode for p in processes):
            sys.exit(f"a worker failed with {k} workers")
        rates[k] = k * args.models_per_worker / wall
        print(f"{k} worker(s): {k * args.models_per_worker} models in {wall:.1f} s = {rates[k]:.2f} models/s "
              f"({rates[k] / rates[args.workers[0]]:.2f}x {args.workers[0]} worker(s))", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--regnet", default=DEFAULT_MODEL)
    parser.add_argument("--images", type=int, default=20480, help="training images per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--models-per-worker", type=int, default=4)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: this PyTorch sees no CUDA device (torch.cuda.is_available() is False); run it on a machine "
              "with a GPU (--device cpu runs the same steps on the CPU, to check the script)")
        return
    torch.set_num_threads(1)  # the host side of a GPU run only launches kernels; one thread, as study workers
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"{name}, torch {torch.__version__}, model {args.regnet}")
    trainer_vs_plain(args)
    workers_per_gpu(args)


if __name__ == "__main__":
    main()

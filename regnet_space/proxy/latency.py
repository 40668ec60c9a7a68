"""Measured inference speed: FLOPs are not speed (memory access, parallelism and element-wise ops are not in
them), so a model is also judged by the time a forward pass takes on the target device.

Settings are fixed numbers (warm-up and repeat counts, threads, a seeded input), never a time budget, so a
measurement does the same work every time. Several models are timed interleaved, one forward pass of each in
turn, so that load from other processes hits them alike and the ranking survives a noisy machine.

The protocol, the same for ``profile`` and for every model a study trains (issue 26: under load the same
model stored 1.5 ms in one study and 45 ms in another): ``WARMUP`` untimed passes, then ``REPEATS`` timed
ones with the measuring thread pinned to the CPU it is on (no migration, one cache), inference mode; the
result keeps the fastest pass, the quartiles and median, the machine's load average per CPU over the
measurement, and the robust coefficient of variation of the passes (0.7413 x IQR / median).

A model's latency is its **fastest pass**: other processes only ever add time to a pass (a time slice lost,
a cache evicted; Python's ``timeit`` documentation argues the same), so the fastest of 30 is what agrees
across runs on a loaded machine, where the median does not. Measured on 2 shared cores at load 3.6 per CPU,
5 processes each: the fastest pass of a 2.2-MFLOP RegNetX varied 0.92-0.99 ms while its median varied
1.01-1.31 ms, and a larger model's median jumped between 2.7 and 8.1 ms (benchmarks/README.md). The
fastest pass is trusted when at least a quarter of the passes came within ``RELIABLE_GAP`` of it (the lower
quartile), i.e. the clean speed was seen again and again; otherwise the measurement is marked unreliable:
studies store it, and the results table leaves it out of the latency column, so latency-normalised EDFs never
rest on it.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import UserError
from ..models.builder import AnyNet
from ..models.spec import AnyNetSpec
from .config import LATENCY_REPEATS, LATENCY_WARMUP


WARMUP, REPEATS = LATENCY_WARMUP, LATENCY_REPEATS
RELIABLE_GAP = 0.15  # the lower quartile may exceed the fastest pass by this much (see the module docstring)


@dataclass(frozen=True)
class LatencyResult:
    """Time per forward pass of one batch: median, quartiles and fastest over the repeats, in milliseconds;
    ``load`` is the 1-minute load average per CPU (the larger of its values before and after), ``cpu`` the
    CPU the measurement was pinned to (None where pinning is not possible)."""

    device: str
    batch_size: int
    resolution: int
    threads: int
    repeats: int
    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float = 0.0
    load: float | None = None
    cpu: int | None = None

    @property
    def spread_ms(self) -> float:
        """The interquartile range: how much the repeats disagree."""
        return self.q3_ms - self.q1_ms

    @property
    def latency_ms(self) -> float:
        """The protocol's latency: the fastest pass (see the module docstring)."""
        return self.min_ms

    @property
    def cv(self) -> float:
        """Robust coefficient of variation of the passes: 0.7413 x IQR / median (0.7413 x IQR estimates the
        standard deviation of a normal distribution, unmoved by a few preempted passes)."""
        return 0.7413 * self.spread_ms / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def reliable(self) -> bool:
        """Whether a quarter of the passes ran within RELIABLE_GAP of the fastest."""
        return self.q1_ms <= (1 + RELIABLE_GAP) * self.min_ms

    @property
    def images_per_s(self) -> float:
        return self.batch_size / (self.median_ms / 1000)

    def to_dict(self) -> dict[str, float | int | str | bool | None]:
        return {**asdict(self), "latency_ms": self.latency_ms, "spread_ms": self.spread_ms,
                "images_per_s": self.images_per_s, "cv": self.cv, "reliable": self.reliable}


def measure_latency(spec_or_model: AnyNetSpec | nn.Module, *, device: str = "cpu", batch_size: int = 1,
                    warmup: int = WARMUP, repeats: int = REPEATS, threads: int | None = None) -> LatencyResult:
    """The latency of one model (an AnyNetSpec, or a module built from one) at its own input size.

    A module is timed in eval mode and left on ``device`` in the mode it came in.

    A 28x28 AnyNet of a few MFLOPs takes about a millisecond per pass on a CPU, so the defaults
    (5 warm-up and 30 timed passes) take well under a second for the models a study trains.
    """
    return compare_latency([spec_or_model], device=device, batch_size=batch_size, warmup=warmup,
                           repeats=repeats, threads=threads)[0]


def compare_latency(models: Sequence[AnyNetSpec | nn.Module], *, device: str = "cpu", batch_size: int = 1,
                    warmup: int = WARMUP, repeats: int = REPEATS, threads: int | None = None,
                    progress: bool = False) -> list[LatencyResult]:
    """The latency of several models, timed interleaved (one pass of each per round), in the given order."""
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise UserError(f"latency: need batch_size >= 1, warmup >= 0, repeats >= 1 "
                        f"(got {batch_size}, {warmup}, {repeats})")
    if threads is not None and threads < 1:
        raise UserError(f"latency: threads must be >= 1, got {threads}")
    torch_device = _device(device)
    modules = [AnyNet(model) if isinstance(model, AnyNetSpec) else model for model in models]
    was_training = [module.training for module in modules]
    load_before = _load_per_cpu()
    with _threads(threads), torch.inference_mode(), _pinned(torch_device) as cpu:
        runners = [_prepare(module, _spec(model), torch_device, batch_size) for module, model in zip(modules, models)]
        for _ in range(warmup):
            for run in runners:
                run()
        times: list[list[float]] = [[] for _ in runners]
        rounds = range(repeats)
        if progress:
            from tqdm import tqdm

            rounds = tqdm(rounds, desc=f"timing batch {batch_size}", unit="round", leave=False)
        for _ in rounds:
            for run, samples in zip(runners, times):
                samples.append(run())
        used_threads = torch.get_num_threads()
    loads = [load for load in (load_before, _load_per_cpu()) if load is not None]
    for module, training in zip(modules, was_training):
        module.train(training)
    results = []
    for model, samples in zip(models, times):
        q1, median, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else samples * 3
        results.append(LatencyResult(device=device, batch_size=batch_size, resolution=_spec(model).resolution,
                                     threads=used_threads, repeats=repeats, median_ms=median * 1000,
                                     q1_ms=q1 * 1000, q3_ms=q3 * 1000, min_ms=min(samples) * 1000,
                                     load=max(loads) if loads else None, cpu=cpu))
    return results


def _spec(model: AnyNetSpec | nn.Module) -> AnyNetSpec:
    spec = model if isinstance(model, AnyNetSpec) else getattr(model, "spec", None)
    if not isinstance(spec, AnyNetSpec):
        raise UserError("latency: give an AnyNetSpec or a module built from one (it carries .spec)")
    return spec


def _device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here")
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device: {device!r} is not cpu or cuda")
    return torch.device(device)


def _prepare(module: nn.Module, spec: AnyNetSpec, device: torch.device, batch_size: int):
    """A zero-argument callable that runs one forward pass (eval mode) and returns its wall time in seconds."""
    module.to(device).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, spec.in_channels, spec.resolution, spec.resolution, generator=generator).to(device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run() -> float:
        synchronize()
        start = time.perf_counter()
        module(x)
        synchronize()
        return time.perf_counter() - start

    return run


def _load_per_cpu() -> float | None:
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except (AttributeError, OSError):
        return None


@contextlib.contextmanager
def _pinned(device: torch.device) -> Iterator[int | None]:
    """Pin the calling thread (which runs a single-threaded forward pass itself) to the CPU it is on, and put
    its affinity back afterwards; yields the CPU, or None where that cannot be done (not Linux, several
    threads, CUDA)."""
    if device.type != "cpu" or torch.get_num_threads() != 1 or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    try:
        previous = os.sched_getaffinity(0)
        with open("/proc/thread-self/stat") as stat:  # field 39: the CPU the thread last ran on
            cpu = int(stat.read().rsplit(")", 1)[1].split()[36])
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError, IndexError):
        yield None
        return
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, previous)


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads for the measurement, then restore the previous setting."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

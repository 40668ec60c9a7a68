"""The proxy trainer: train one spec briefly on an in-memory dataset and report its validation error.

The design-space method ranks hundreds of models by a short training run, so this loop wastes nothing:
batches are cut from device tensors by index (no DataLoader, no per-sample Python), evaluation runs in
inference mode on as many validation images as the comparisons need (ProxyConfig), and the fast paths measured on the development CPU (channels_last, bf16 autocast on CPUs with
native bf16; see benchmarks/README.md) are on by default. Failure is a result, not an exception: a
non-finite or exploding loss ends the run with status ``diverged``, a time limit with ``timeout``.

Threads: ``train_model`` uses the caller's ``torch.get_num_threads()`` unless ``threads`` is given, in which
case it sets that count for the call and restores the caller's afterwards. A study runner that sets
``torch.set_num_threads`` per worker process therefore keeps control.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..models.builder import AnyNet
from ..models.memory import check_fits
from ..models.spec import AnyNetSpec
from .config import ProxyConfig
from .data import Dataset, augment_batch

# On the CPU, bf16 autocast loses to fp32 for grouped convs narrower than this (group width 1: 0.39x,
# 2: 0.53x, 4: 1.10x, 8: 1.19x of channels_last fp32; benchmarks/train_throughput.py --ablation).
MIN_BF16_GROUP_WIDTH = 4
# Steps between divergence / time-limit checks: each check syncs with the device, so not every step.
CHECK_EVERY = 16


@dataclass
class TrainResult:
    """What one training run produced. Errors are top-1 error in percent; None where no epoch finished
    (or, for ``val_error``, where the run diverged)."""

    status: str
    val_error: float | None
    best_val_error: float | None
    epochs: int
    diverged_epoch: int | None
    loss_curve: list[float]
    val_curve: list[float]
    images_per_s: float
    seconds: float
    test_error: float | None = None
    precision: str = "fp32"
    channels_last: bool = False
    threads: int = 1
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def train_model(spec: AnyNetSpec, dataset: Dataset, config: ProxyConfig | None = None, *, seed: int = 0,
                device: str = "cpu", time_limit: float | None = None, progress: bool = True,
                threads: int | None = None, report_test: bool = False) -> TrainResult:
    """Train ``spec`` on ``dataset`` with ``config`` and return its validation error and speed.

    Seeds model init, batch order and augmentation from ``seed`` without disturbing the caller's global RNG.
    ``time_limit`` (seconds, for the whole call) stops the run with status ``timeout``; ``report_test`` also
    evaluates the test set at the end (for reporting; selection must use validation).
    """
    config = config or ProxyConfig()
    start = time.perf_counter()
    dev = torch.device(device)
    if (spec.in_channels, spec.resolution, spec.num_classes) != (dataset.in_channels, dataset.resolution,
                                                                  dataset.num_classes):
        raise UserError(f"model input {spec.in_channels}x{spec.resolution}x{spec.resolution} with "
                        f"{spec.num_classes} classes does not fit dataset {dataset.name!r} "
                        f"({dataset.in_channels}x{dataset.resolution}x{dataset.resolution}, "
                        f"{dataset.num_classes} classes); use spec.with_input(...)")
    if config.compile and dev.type != "cuda":
        raise UserError("proxy.compile: CUDA only (on the CPU compiling costs more than a proxy run)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device cuda: no CUDA GPU is available to this PyTorch")
    check_fits(spec, config.batch_size, training=True, device=device, what="training")
    bf16 = _use_bf16(config.precision, dev, spec)
    channels_last = True if config.channels_last is None else config.channels_last
    fork_devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with _thread_count(threads), torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        run = _Run(spec, dataset, config, dev, bf16, channels_last, seed)
        result = run.train(start, time_limit, progress)
        if report_test and result.status != "diverged":
            result.test_error = run.evaluate(run.test_x, run.test_y)
        result.threads = torch.get_num_threads()
    result.seconds = time.perf_counter() - start
    return result


class _Run:
    """The state of one training run: model, optimiser, data on the device, and the schedule."""

    def __init__(self, spec: AnyNetSpec, dataset: Dataset, config: ProxyConfig, dev: torch.device, bf16: bool,
                 channels_last: bool, seed: int) -> None:
        self.config, self.dev, self.bf16, self.dataset = config, dev, bf16, dataset
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = AnyNet(spec).to(dev, memory_format=self.memory_format)
        self.step_model = torch.compile(self.model, mode="reduce-overhead") if config.compile else self.model
        n_train = max(1, round(config.train_fraction * len(dataset.train_y)))
        self.train_x, self.train_y = dataset.train_x[:n_train].to(dev), dataset.train_y[:n_train].to(dev)
        self.val_x, self.val_y = dataset.val_x[:config.eval_images].to(dev), dataset.val_y[:config.eval_images].to(dev)
        self.test_x, self.test_y = dataset.test_x.to(dev), dataset.test_y.to(dev)
        self.black = dataset.black.to(dev)
        # Drop the last partial batch (tiny batches give noisy BN statistics and break static shapes),
        # unless it is the only one.
        self.batch_size = min(config.batch_size, n_train)
        self.steps_per_epoch = n_train // self.batch_size
        self.total_steps = config.epochs * self.steps_per_epoch
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)
        self.optimizer = torch.optim.SGD(_param_groups(self.model, config), lr=config.lr, momentum=config.momentum,
                                         nesterov=config.nesterov)
        self.order_rng = torch.Generator().manual_seed(seed)
        self.augment_rng = torch.Generator(device=dev).manual_seed(seed + 1) if dataset.augment else None
        self.loss_limit = config.max_loss_ratio * math.log(max(2, spec.num_classes))

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """An endless stream of shuffled training batches; a new permutation every epoch."""
        while True:
            order = torch.randperm(len(self.train_y), generator=self.order_rng).to(self.dev)
            for i in range(self.steps_per_epoch):
                index = order[i * self.batch_size:(i + 1) * self.batch_size]
                x = self.train_x[index]
                if self.dataset.augment:
                    x = augment_batch(x, self.black, flip=self.dataset.flip, generator=self.augment_rng)
                yield x.contiguous(memory_format=self.memory_format), self.train_y[index]

    def train(self, start: float, time_limit: float | None, progress: bool) -> TrainResult:
        from tqdm import tqdm

        config = self.config
        losses = torch.zeros(self.total_steps, device=self.dev)
        loss_curve: list[float] = []
        val_curve: list[float] = []
        status, diverged_epoch = "ok", None
        train_seconds = 0.0
        bar = tqdm(total=self.total_steps, desc="train", unit="step", file=sys.stderr, disable=not progress,
                   leave=False, dynamic_ncols=True)
        self.model.train()
        tick = time.perf_counter()
        epoch_start = window_start = 0
        for step, (x, y) in zip(range(self.total_steps), self.batches()):
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(self.config, step, self.total_steps, self.warmup_steps)
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.step_model(x), y, label_smoothing=config.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses[step] = loss.detach()
            bar.update()
            done = step + 1
            epoch_end = done % self.steps_per_epoch == 0
            if done - window_start < CHECK_EVERY and not epoch_end:
                continue
            window = losses[window_start:done].mean().item()
            window_start = done
            if not math.isfinite(window) or window > self.loss_limit:
                status, diverged_epoch = "diverged", len(val_curve) + 1
                break
            if epoch_end:
                train_seconds += time.perf_counter() - tick
                loss_curve.append(losses[epoch_start:done].mean().item())
                val_curve.append(self.evaluate(self.val_x, self.val_y))
                self.model.train()
                bar.set_postfix(loss=f"{loss_curve[-1]:.3f}", val_err=f"{val_curve[-1]:.2f}%")
                epoch_start = done
                tick = time.perf_counter()
            if time_limit is not None and time.perf_counter() - start > time_limit and done < self.total_steps:
                status = "timeout"
                break
        bar.close()
        train_seconds += time.perf_counter() - tick if status != "ok" else 0.0
        images_per_s = window_start * self.batch_size / train_seconds if train_seconds > 0 else 0.0
        return TrainResult(
            status=status, val_error=val_curve[-1] if val_curve and status != "diverged" else None,
            best_val_error=min(val_curve) if val_curve else None, epochs=len(val_curve),
            diverged_epoch=diverged_epoch, loss_curve=loss_curve, val_curve=val_curve, images_per_s=images_per_s,
            seconds=0.0, precision="bf16" if self.bf16 else "fp32",
            channels_last=self.memory_format is torch.channels_last, config=config.to_dict())

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Top-1 error in percent, with BN in inference mode."""
        return 100.0 * (self.predict(x) != y).sum().item() / max(1, len(y))

    @torch.inference_mode()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted class of each image, in batches of ``eval_batch_size`` under ``inference_mode`` (no
        autograd bookkeeping at all). Batches of a few hundred keep the activations of these small models in
        cache; 2,000 was slower (see ProxyConfig)."""
        self.model.eval()
        step = self.config.eval_batch_size
        predictions = []
        for i in range(0, len(x), step):
            batch = x[i:i + step].contiguous(memory_format=self.memory_format)
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.bf16):
                predictions.append(self.model(batch).argmax(1))
        return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64, device=self.dev)


def learning_rate(config: ProxyConfig, step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up from ``warmup_factor * lr`` over ``warmup_steps``, then a half-period cosine to zero."""
    if step < warmup_steps:
        return config.lr * (config.warmup_factor + (1 - config.warmup_factor) * step / warmup_steps)
    return 0.5 * config.lr * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps)))


def _param_groups(model: nn.Module, config: ProxyConfig) -> list[dict[str, Any]]:
    """Weight decay on conv and linear weights; on BN parameters and biases (1-D) only if asked."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    other_decay = config.weight_decay if config.norm_weight_decay else 0.0
    return [{"params": decay, "weight_decay": config.weight_decay},
            {"params": other, "weight_decay": other_decay}]


def _use_bf16(precision: str, dev: torch.device, spec: AnyNetSpec) -> bool:
    """Whether to autocast to bf16: asked for, or "auto" where it was measured to win."""
    if precision != "auto":
        return precision == "bf16"
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # Emulated bf16 is slower than fp32, so only CPUs with native bf16 (AVX512-BF16, AMX) qualify; and there,
    # grouped convs with fewer than 4 channels per group run slower in bf16 (benchmarks/README.md).
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    narrow_groups = any(0 < stage.group_width < MIN_BF16_GROUP_WIDTH for stage in spec.stages)
    return dev.type == "cpu" and native and not narrow_groups


@contextlib.contextmanager
def _thread_count(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the duration, then restore the caller's."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

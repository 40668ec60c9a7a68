"""The proxy's training recipe (``ProxyConfig``): a plain dataclass, apart from the trainer so that reading and
checking a study spec, and analysing its results, do not import PyTorch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..models.spec import dataclass_from_mapping

PRECISIONS = ("auto", "fp32", "bf16")
# The latency protocol's pass counts (latency.py), here so that commands can show them without importing torch.
LATENCY_WARMUP, LATENCY_REPEATS = 5, 30


@dataclass(frozen=True)
class ProxyConfig:
    """One training recipe. Defaults are the proxy chosen in analysis/proxy_fidelity/README.md.

    ``lr`` is for ``batch_size`` (scale it with the batch). ``warmup_epochs`` of linear warm-up from
    ``warmup_factor * lr`` precede a half-period cosine to zero, stepped every iteration. ``train_fraction``
    trains on the first part of the (seeded, shuffled) training split, the same images for every model.
    ``norm_weight_decay=False`` exempts BN parameters and biases from weight decay (as pycls does).
    A run is ``diverged`` when the mean loss over a check window is non-finite or above
    ``max_loss_ratio * ln(num_classes)`` (the loss of uniform guessing). ``precision="auto"`` is bf16
    autocast on CUDA, and on CPUs with native bf16 unless the model has grouped convs narrower than
    ``train.MIN_BF16_GROUP_WIDTH``; else fp32. ``channels_last=None`` means on (it won for every model measured).
    ``compile`` wraps the model in ``torch.compile(mode="reduce-overhead")`` (CUDA graphs); CUDA only.

    Evaluation: ``eval_images`` of the validation split (its first ones: the split is a seeded shuffle, so a
    random subset; None: all of it), in batches of ``eval_batch_size``. Rule for its size: the binomial
    standard error of a model's error, sqrt(e(1-e)/n) <= 0.5/sqrt(n), should be at most half the proxy's own
    seed-to-seed noise sigma, so that evaluation adds at most 12% to the noise a comparison sees:
    n >= 1/sigma^2. Measured sigma = 1.5 points (32 models of the small-form progression, two seeds; the
    spread between models there is 2.8 points): n >= 4,444, so 5,000 (standard error <= 0.71 points, +8% noise).
    Batch 256 in inference mode evaluated 1.70x faster than batch 2,000 under ``no_grad``, with the same
    predictions (benchmarks/eval_speed.py); folding BN into the convs changed 22 of 10,000 bf16 predictions and
    was slower, so it is not done (benchmarks/README.md).
    """

    epochs: int = 1
    lr: float = 0.4
    batch_size: int = 128
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True
    warmup_epochs: float = 0.2
    warmup_factor: float = 0.1
    label_smoothing: float = 0.0
    train_fraction: float = 0.2
    eval_images: int | None = 5000
    eval_batch_size: int = 256
    norm_weight_decay: bool = False
    max_loss_ratio: float = 10.0
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise UserError(f"proxy.{name}: {rule}, got {getattr(self, name)!r}")

        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "must be an integer >= 1")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "must be a finite number > 0")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "must be an integer >= 1")
        need(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1, "eval_batch_size",
             "must be an integer >= 1")
        need(self.eval_images is None or (isinstance(self.eval_images, int) and self.eval_images >= 1),
             "eval_images", "must be an integer >= 1 (or left out: the whole validation split)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(not self.nesterov or self.momentum > 0, "nesterov", "needs momentum > 0")
        need(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs", "must be in [0, epochs]")
        need(0 < self.warmup_factor <= 1, "warmup_factor", "must be in (0, 1]")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        need(0 < self.train_fraction <= 1, "train_fraction", "must be in (0, 1]")
        need(self.max_loss_ratio > 1, "max_loss_ratio", "must be > 1")
        need(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProxyConfig":
        """From a mapping such as a study TOML's ``[proxy]`` table; unknown keys are errors."""
        return dataclass_from_mapping(cls, data, "proxy")

    def replace(self, **changes: Any) -> "ProxyConfig":
        return dataclasses.replace(self, **changes)

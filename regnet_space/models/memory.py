"""Refusing a model that cannot fit in memory before anything is allocated.

A batch of 10^6 images, or a network at the hard limits of ``spec.py``, asked the allocator for 128-602 GB and
ended in a MemoryError traceback (or the kernel's OOM killer) minutes later. The analytic complexity gives, with
no allocation, a lower bound of the bytes a run holds at once: the float32 weights (three copies when training:
weights, gradients and SGD's momentum) and the batch (its input images, and when training the outputs of every
conv and linear layer, ``acts`` per image, which the backward pass keeps). A run whose lower bound exceeds the
memory available is refused with one line; a run under it may still not fit, which the allocator then says.
"""

from __future__ import annotations

import os

from ..errors import UserError
from .spec import AnyNetSpec

FLOAT_BYTES = 4
TRAINING_COPIES = 3  # weights, gradients, momentum buffers (SGD with momentum, the proxy's optimizer)


def bytes_needed(spec: AnyNetSpec, batch: int, *, training: bool) -> int:
    """A lower bound of the bytes a forward (and, when ``training``, backward) pass of ``batch`` images holds."""
    from .complexity import complexity

    cx = complexity(spec)
    weights = cx.params * (TRAINING_COPIES if training else 1)
    per_image = spec.in_channels * spec.resolution ** 2 + (cx.acts if training else 0)
    return int((weights + per_image * batch) * FLOAT_BYTES)


def available_bytes(device: str = "cpu") -> int | None:
    """Free memory of ``device``: a GPU's free memory, else the kernel's MemAvailable; None when unknown."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0]) if torch.cuda.is_available() else None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def check_fits(spec: AnyNetSpec, batch: int, *, training: bool, device: str = "cpu", what: str = "the model") -> None:
    """Raise a one-line UserError when ``bytes_needed`` exceeds ``available_bytes``."""
    from .summary import human

    needed, free = bytes_needed(spec, batch, training=training), available_bytes(device)
    if free is not None and needed > free:
        raise UserError(f"{what} needs at least {human(needed)}B of memory at batch size {batch} "
                        f"({'training' if training else 'inference'}, float32), and {device} has "
                        f"{human(free)}B available; use a smaller batch or model")

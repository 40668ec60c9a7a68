"""Spreading local workers over the GPUs of one machine, through CUDA_VISIBLE_DEVICES.

Each worker process is shown one GPU (``CUDA_VISIBLE_DEVICES=<that GPU>``) and trains on ``cuda``, which is then
that GPU: the same way SLURM hands an array task the GPUs it allocated (``--gres``), so a worker never needs to
know where it runs. Only ``--device cuda`` (no index) spreads; ``cuda:1`` puts every worker on GPU 1.
Tested with the device list mocked at the CUDA_VISIBLE_DEVICES level; untested on real GPUs so far.
"""

from __future__ import annotations

import os
from typing import Mapping

from ..errors import UserError

VISIBLE = "CUDA_VISIBLE_DEVICES"


def visible_gpus(environ: Mapping[str, str] | None = None, count: int | None = None) -> list[str]:
    """The GPUs this process may use, named as CUDA_VISIBLE_DEVICES names them (indices or UUIDs): its list when
    it is set, else 0..n-1 for the n devices torch sees (``count`` overrides the query)."""
    environ = os.environ if environ is None else environ
    if environ.get(VISIBLE) is not None:
        return [name.strip() for name in environ[VISIBLE].split(",") if name.strip()]
    if count is None:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [str(i) for i in range(count)]


def plan_devices(workers: int | None, device: str, per_device: int | None, *,
                 environ: Mapping[str, str] | None = None, count: int | None = None
                 ) -> tuple[int, list[dict[str, str]]]:
    """How many local workers to start and each one's environment additions. With ``device == "cuda"``: worker
    i gets GPU ``i // per_device`` (``per_device`` workers share a GPU, for proxies too small to fill one; the
    workers default to GPUs x per_device), or GPU ``i % n`` round robin without ``per_device``."""
    if device != "cuda":
        if per_device is not None:
            raise UserError(f"--workers-per-device spreads workers over GPUs: it needs --device cuda, not {device}")
        n = workers or 1
        return n, [{} for _ in range(n)]
    gpus = visible_gpus(environ, count)
    if not gpus:
        raise UserError("--device cuda: no GPU is visible (CUDA_VISIBLE_DEVICES is empty or no CUDA device)")
    if per_device is None:
        n = workers or 1
        return n, [{VISIBLE: gpus[i % len(gpus)]} for i in range(n)]
    n = workers or len(gpus) * per_device
    if n > len(gpus) * per_device:
        raise UserError(f"--workers {n} with {len(gpus)} visible GPU(s) and --workers-per-device {per_device}: "
                        f"at most {len(gpus) * per_device} workers")
    return n, [{VISIBLE: gpus[i // per_device]} for i in range(n)]

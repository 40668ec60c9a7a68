"""Threads on a shared machine: OpenMP threads that sleep instead of spinning, one torch thread per process by
default, and a warning when a run asks for more threads than it has CPUs.

Why: torch's CPU kernels run on OpenMP (GNU libgomp in the pip wheels; Intel's runtime in some builds), whose
threads busy-wait at every barrier for their partners. When a partner is descheduled (another job holds its
core) the others spin for the whole time slice: on a loaded 2-core machine a worker with 2 torch threads
trained 15x slower than with 1 and used 28x the CPU per image, and ``OMP_WAIT_POLICY=PASSIVE`` alone won back
8.4x (issue 26). The small models of a study do not keep two threads busy anyway, so a worker gets one thread
and a machine gets one worker per core.

The runtime reads these variables once, when torch loads it, so ``passive_waiting`` must run before
``import torch``: the package's ``__init__`` calls it, which covers every process the tool starts (the CLI,
study workers, the report's workers: they import this package before torch, and inherit the environment).
A value the user set is kept.
"""

from __future__ import annotations

import os

# OMP_WAIT_POLICY is the OpenMP standard's switch (libgomp: no spinning at all); KMP_BLOCKTIME=0 is the same for
# Intel's runtime (libiomp5, which also reads OMP_WAIT_POLICY), which otherwise spins 200 ms before sleeping.
PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
DEFAULT_THREADS = 1  # torch threads per worker process unless asked for more (measured above)


def passive_waiting() -> None:
    """Set the passive-waiting variables where the user has not. In a process that imported torch before this
    package they take effect only in the processes it starts (its own runtime has read the old values)."""
    for key, value in PASSIVE_WAIT.items():
        os.environ.setdefault(key, value)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's or taskset's share), which can
    be fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def oversubscription(threads: int, workers: int = 1) -> str | None:
    """A warning when ``workers`` processes of ``threads`` threads ask for more CPUs than this process may use
    (threads then wait on each other's cores; see the module docstring), else None."""
    cpus = available_cpus()
    if threads * workers <= cpus:
        return None
    return (f"{workers} worker(s) x {threads} thread(s) = {threads * workers} threads on {cpus} CPU(s) this "
            f"process may use: threads will wait for each other; use --workers {min(workers, cpus)} "
            f"--threads {max(1, cpus // min(workers, cpus))} or fewer")

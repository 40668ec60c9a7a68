"""CPU time of one journal claim with 1,000 and with 10,000 models waiting, interleaved, in one process.

    PYTHONPATH=. .venv/bin/python benchmarks/claim_cost.py [--sizes 1000 10000] [--claims 200]

Each size gets its own journal file holding that many waiting trials (a real study's user attributes: a spec
of ~1 KB, space, index). After each study's first claim (which reads the study once), claims alternate between
the studies, each followed by storing the model as complete, and the CPU time (``time.process_time``) of every
claim is kept; printed are the median per size and the ratio of the largest size to the smallest (issue 26's
target: <= 1.5x). Building the journals skips fsync (a journal of 10,000 trials takes minutes with it); the
claims and stores that are timed run with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def waiting_study(path: str, n: int):
    import optuna
    from optuna.distributions import IntDistribution
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    storage = JournalStorage(JournalFileBackend(path))
    study = optuna.create_study(storage=storage, study_name=f"claims-{n}")
    spec = '{"stages": [' + ", ".join(['{"depth": 2, "width": 64, "stride": 2, "group_width": 8}'] * 16) + "]}"
    distributions = {"x": IntDistribution(0, n)}
    with mock.patch.object(os, "fsync", lambda fd: None):
        study.add_trials([optuna.trial.create_trial(state=TrialState.WAITING, params={"x": i},
                                                    distributions=distributions,
                                                    user_attrs={"spec": spec, "space": "regnetx", "model_index": i})
                          for i in range(n)])
    return study, storage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--claims", type=int, default=200, help="timed claims per size")
    args = parser.parse_args()
    import optuna
    from optuna.trial import TrialState

    from regnet_space.study.queue import finish
    from regnet_space.study.trials import claim

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as directory:
        studies = {n: waiting_study(os.path.join(directory, f"{n}.journal"), n) for n in args.sizes}
        first = {}
        for n, (study, storage) in studies.items():
            start = time.process_time()
            trial = claim(study, storage, "w", stale_after=60)
            first[n] = time.process_time() - start
            finish(storage, trial._trial_id, TrialState.COMPLETE, {}, [1.0])
        times: dict[int, list[float]] = {n: [] for n in args.sizes}
        for _ in range(args.claims):
            for n, (study, storage) in studies.items():
                start = time.process_time()
                trial = claim(study, storage, "w", stale_after=60)
                times[n].append(time.process_time() - start)
                with contextlib.suppress(Exception):
                    finish(storage, trial._trial_id, TrialState.COMPLETE, {}, [1.0])
    for n in args.sizes:
        print(f"{n:>6} waiting: claim CPU median {1000 * statistics.median(times[n]):.3f} ms "
              f"(first claim {1000 * first[n]:.1f} ms), {args.claims} claims")
    low, high = min(args.sizes), max(args.sizes)
    print(f"ratio {high}/{low}: {statistics.median(times[high]) / statistics.median(times[low]):.2f}x")


if __name__ == "__main__":
    main()

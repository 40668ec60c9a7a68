"""Local workers spread over GPUs through CUDA_VISIBLE_DEVICES, tested on CPU with the GPU list mocked at that level
(untested on real GPUs): which GPU each worker is shown, and that the runner hands it to the worker's process."""

from __future__ import annotations

import pytest

from regnet_space.errors import UserError
from regnet_space.study import runner
from regnet_space.study.devices import plan_devices, visible_gpus
from regnet_space.study.session import open_study
from regnet_space.study.spec import load_study_spec
from study_helpers import cli, tiny_spec


def test_visible_gpus_are_cuda_visible_devices_when_set():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 5"}) == ["3", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"}) == ["GPU-aa", "GPU-bb"]
    assert visible_gpus({}, count=2) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, count=4) == []  # set empty: no GPU, whatever torch counts


def test_workers_are_spread_round_robin_or_k_per_gpu():
    env = {"CUDA_VISIBLE_DEVICES": "3,5"}
    assert plan_devices(3, "cuda", None, environ=env) == (3, [{"CUDA_VISIBLE_DEVICES": g} for g in "353"])
    assert plan_devices(None, "cuda", 2, environ=env) == (4, [{"CUDA_VISIBLE_DEVICES": g} for g in "3355"])
    assert plan_devices(3, "cuda", 2, environ=env) == (3, [{"CUDA_VISIBLE_DEVICES": g} for g in "335"])
    assert plan_devices(2, "cuda:1", None, environ=env) == (2, [{}, {}])  # an explicit index: no spreading
    assert plan_devices(None, "cpu", None, environ=env) == (1, [{}])


@pytest.mark.parametrize("workers, device, per_device, env, message", [
    (5, "cuda", 2, {"CUDA_VISIBLE_DEVICES": "0,1"}, "at most 4 workers"),
    (2, "cuda", None, {"CUDA_VISIBLE_DEVICES": ""}, "no GPU is visible"),
    (2, "cpu", 2, {}, "needs --device cuda"),
])
def test_impossible_spreads_are_refused(workers, device, per_device, env, message):
    with pytest.raises(UserError, match=message):
        plan_devices(workers, device, per_device, environ=env)


def test_the_runner_shows_each_worker_its_gpu(tmp_path, monkeypatch):
    seen = []

    class Started:
        """A worker process that has already exited (the population stays untrained)."""

        returncode = 0

        def __init__(self, command, env, **kwargs):
            seen.append((command[command.index("--name") + 1], env.get("CUDA_VISIBLE_DEVICES")))

        def poll(self):
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", Started)
    spec = load_study_spec(tiny_spec(tmp_path, name="gpus", n=1))
    session = open_study(spec, directory=str(tmp_path / "run"))
    workers, env = plan_devices(None, "cuda", 2, environ={"CUDA_VISIBLE_DEVICES": "6,7"})
    assert runner.run_local(session, workers=workers, directory=str(tmp_path / "run"), storage_url=None,
                            device="cuda", progress=False, worker_env=env) == 1  # nothing trained: reported
    assert [gpu for _, gpu in seen] == ["6", "6", "7", "7"]
    assert len({name for name, _ in seen}) == 4


def test_workers_per_device_with_slurm_exits_2(tmp_path):
    spec = tiny_spec(tmp_path, name="perdev", n=1)
    result = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--launcher", "slurm",
                 "--workers-per-device", "2")
    assert result.returncode == 2 and "--workers-per-device applies to local workers" in result.stderr

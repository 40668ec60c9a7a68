"""The SLURM launcher without a cluster: its settings and their bad input, the batch script it writes, and the
check that a journal is refused where workers on other hosts could not see it. The real cluster: test_slurm.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from regnet_space.errors import UserError
from regnet_space.study.launcher import SlurmSettings, launcher_settings, merged_settings
from regnet_space.study.session import open_study
from regnet_space.study.slurm import batch_script, check_journal_reachable, file_system_type
from regnet_space.study.spec import load_study_spec
from study_helpers import cli, tiny_spec

MOUNTS = """overlay / overlay rw 0 0
server:/export /shared nfs4 rw 0 0
/dev/sda1 /scratch ext4 rw 0 0
"""


def test_file_system_type_is_the_longest_mount_above_the_path():
    assert file_system_type(Path("/shared/lab/runs"), MOUNTS) == "nfs4"
    assert file_system_type(Path("/scratch/x"), MOUNTS) == "ext4"
    assert file_system_type(Path("/home/me"), MOUNTS) == "overlay"


def test_a_journal_is_refused_only_where_another_host_could_not_see_it():
    check_journal_reachable(Path("/scratch/runs"), ["vm"], host="vm", mounts=MOUNTS)  # one node: this host
    check_journal_reachable(Path("/shared/runs"), ["a", "b"], host="vm", mounts=MOUNTS)  # shared file system
    with pytest.raises(UserError, match=r"local file system \(ext4\).*other hosts \(a, b\).*--storage postgresql"):
        check_journal_reachable(Path("/scratch/runs"), ["a", "b"], host="vm", mounts=MOUNTS)


def test_settings_come_from_the_table_with_flags_on_top():
    table = {"launcher": "slurm", "workers": 8, "partition": "gpu", "time": "01:00:00",
             "slurm_args": {"account": "lab", "qos": "low"}}
    settings = merged_settings(table, {"partition": "cpu", "mem": "4G", "slurm_args": {"qos": "high"}})
    assert (settings.launcher, settings.workers, settings.partition, settings.mem, settings.time) == \
        ("slurm", 8, "cpu", "4G", "01:00:00")
    assert settings.slurm_args == {"account": "lab", "qos": "high"}
    assert launcher_settings({}) == SlurmSettings()


@pytest.mark.parametrize("table, message", [
    ({"launcher": "pbs"}, "launcher.launcher: must be one of local, slurm"),
    ({"cpus_per_worker": 0}, "launcher.cpus_per_worker: must be an integer >= 1"),
    ({"gpus": 1}, "launcher.gpus: unknown key"),
    ({"slurm_args": {"array": "0-3"}}, "array, output and signal are the launcher's"),
    ({"slurm_args": {"--account": "lab"}}, "without dashes"),
])
def test_bad_launcher_tables_name_the_key(table, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        launcher_settings(table)


def test_the_batch_script_runs_one_worker_per_task_and_requeues_near_the_limit(tmp_path):
    spec = load_study_spec(tiny_spec(tmp_path, name="script", n=2))
    session = open_study(spec, directory=str(tmp_path / "run"))
    settings = SlurmSettings(launcher="slurm", partition="gpu", gpus_per_worker=1, cpus_per_worker=4, mem="8G",
                             time="02:00:00", requeue_before=120, max_requeues=5, slurm_args={"account": "lab"})
    script = batch_script(session, settings, workers=6, folder=tmp_path / "run", device="cuda", storage_given=True)
    for option in ("--array=0-5", "--signal=B:USR1@120", "--requeue", "--cpus-per-task=4", "--partition=gpu",
                   "--gres=gpu:1", "--mem=8G", "--time=02:00:00", "--account=lab",
                   f"--output={(tmp_path / 'run').resolve()}/slurm/logs/%A_%a.log"):
        assert f"#SBATCH {option}\n" in script
    assert f"{sys.executable} -m regnet_space.cli study worker {Path(spec.path).resolve()}" in script
    assert "--threads 4 --device cuda" in script and 'if [ "$run" -lt 5 ]' in script
    assert "unset REGNET_SPACE_STORAGE" not in script  # the URL comes through sbatch's exported environment
    journal = batch_script(session, SlurmSettings(), workers=1, folder=tmp_path / "run", device="cpu",
                           storage_given=False)
    assert "unset REGNET_SPACE_STORAGE" in journal and "--gres" not in journal and "--time" not in journal


def test_slurm_flags_without_the_slurm_launcher_exit_2(tmp_path):
    spec = tiny_spec(tmp_path, name="flags", n=1)
    result = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--partition", "gpu")
    assert result.returncode == 2
    assert result.stderr.strip() == ("regnet-space: error: --partition applies to SLURM workers: add --launcher "
                                                      "slurm (or launcher = \"slurm\" in the spec's [launcher] table)")


def test_a_bad_launcher_table_exits_2_naming_the_key(tmp_path):
    spec = tiny_spec(tmp_path, name="table", n=1)
    spec.write_text(spec.read_text() + "[launcher]\ncpus_per_worker = 0\n")
    result = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "launcher.cpus_per_worker: must be an integer >= 1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_sbatch_the_slurm_launcher_says_where_to_run_it(tmp_path):
    spec = tiny_spec(tmp_path, name="nosbatch", n=1)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = cli("study", "run", str(spec), "--dir", str(tmp_path / "run"), "--launcher", "slurm", env=env)
    assert result.returncode == 2, result.stderr
    assert "not found: --launcher slurm needs the SLURM client commands" in result.stderr

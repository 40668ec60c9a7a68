"""Measured latency: fixed settings (exact pass counts, threads, restored state), interleaved timing of several
models, and `regnet-space profile` ranking models by measured speed beside their flops."""

import json

import pytest
import torch

from regnet_space import AnyNet, UserError, resolve_model
from regnet_space.cli import main
from regnet_space.proxy.latency import compare_latency, measure_latency


def tiny(name="regnetx_002"):
    return resolve_model(name, resolution=28, in_channels=1, num_classes=10)


def counted(spec, log, label):
    model = AnyNet(spec)
    model.register_forward_hook(lambda *_: log.append(label))
    return model


def test_measure_latency_runs_exactly_warmup_plus_repeats_passes_and_restores_state():
    log = []
    model = counted(tiny(), log, "m").train()
    threads = torch.get_num_threads()
    result = measure_latency(model, batch_size=3, warmup=2, repeats=7, threads=1)
    assert len(log) == 2 + 7
    assert model.training and torch.get_num_threads() == threads
    assert (result.batch_size, result.resolution, result.threads, result.repeats) == (3, 28, 1, 7)
    assert 0 < result.q1_ms <= result.median_ms <= result.q3_ms
    assert result.spread_ms == result.q3_ms - result.q1_ms
    assert result.images_per_s == pytest.approx(3 / (result.median_ms / 1000))
    assert set(result.to_dict()) >= {"median_ms", "spread_ms", "images_per_s", "device"}


def test_measure_latency_takes_a_spec():
    result = measure_latency(tiny("shufflenet_v2_x0_5"), repeats=3, warmup=1, threads=1)
    assert result.resolution == 28 and result.median_ms > 0


def test_models_are_timed_interleaved():
    log = []
    models = [counted(tiny(), log, "a"), counted(tiny("shufflenet_v2_x0_5"), log, "b")]
    results = compare_latency(models, warmup=1, repeats=3, threads=1)
    assert log == ["a", "b"] * 4
    assert len(results) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "repeats >= 1"),
    ({"batch_size": 0}, "batch_size >= 1"),
    ({"threads": 0}, "threads must be >= 1"),
    ({"device": "tpu"}, "not cpu or cuda"),
])
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        measure_latency(tiny(), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where there is no GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(UserError, match="no CUDA device"):
        measure_latency(tiny(), device="cuda")


def test_profile_json_ranks_by_latency_and_reports_complexity(capsys):
    names = ["regnetx_002", "shufflenet_v2_x0_5", "resnet18"]
    assert main(["profile", *names, "--resolution", "32", "--batch-size", "2", "--warmup", "1",
                 "--repeats", "3", "--threads", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["models"]
    assert sorted(r["model"] for r in rows) == sorted(names)
    assert [r["latency_rank"] for r in rows] == [1, 2, 3]
    fastest = [r["latency"]["latency_ms"] for r in rows]  # ranked by the protocol's latency: the fastest pass
    assert fastest == sorted(fastest) and all(r["latency"]["latency_ms"] == r["latency"]["min_ms"] for r in rows)
    by_flops = sorted(rows, key=lambda r: r["flops"])
    assert [r["flops_rank"] for r in by_flops] == [1, 2, 3]
    for row in rows:
        assert row["resolution"] == 32 and row["latency"]["batch_size"] == 1
        assert row["throughput"]["batch_size"] == 2 and row["throughput"]["threads"] == 1
        assert row["gmacs_per_s"] == pytest.approx(row["throughput"]["images_per_s"] * row["flops"] / 1e9)
        assert row["params"] > 0 and row["acts"] > 0 and row["mac"] > 0
    assert report["batch_size"] == 2 and report["repeats"] == 3


def test_profile_table(capsys):
    assert main(["profile", "regnetx_002", "--resolution", "28", "--batch-size", "2", "--warmup", "0",
                 "--repeats", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "ms b1" in out and "median (IQR)" in out and "img/s b2" in out and "regnetx_002" in out


def test_profile_unknown_model_exits_2(capsys):
    assert main(["profile", "resnet51"]) == 2
    assert "unknown model 'resnet51'" in capsys.readouterr().err


def test_the_protocol_pins_records_load_and_puts_the_affinity_back():
    import os

    before = os.sched_getaffinity(0)
    result = measure_latency(tiny(), warmup=1, repeats=5, threads=1)
    assert os.sched_getaffinity(0) == before
    assert result.cpu in before and result.load is not None and result.load >= 0
    assert 0 < result.min_ms <= result.q1_ms
    assert result.to_dict()["cv"] == pytest.approx(0.7413 * result.spread_ms / result.median_ms)


class _Stutter(torch.nn.Module):
    """A model whose passes number ``slow_of_4`` in every 4 are cut by a 20 ms 'time slice'."""

    def __init__(self, spec, slow_of_4):
        super().__init__()
        self.spec, self.slow_of_4, self.calls = spec, slow_of_4, 0

    def forward(self, x):
        import time

        self.calls += 1
        time.sleep(0.02 if self.calls % 4 < self.slow_of_4 else 0.001)
        return x


def test_latency_is_the_fastest_pass_trusted_only_when_a_quarter_of_the_passes_come_close():
    noisy = measure_latency(_Stutter(tiny(), 3), warmup=0, repeats=12, threads=1)
    assert noisy.latency_ms == noisy.min_ms and 1 <= noisy.latency_ms < 5  # the clean passes' time
    assert noisy.q1_ms > 2 * noisy.min_ms and not noisy.reliable and not noisy.to_dict()["reliable"]
    assert measure_latency(_Stutter(tiny(), 1), warmup=0, repeats=12, threads=1).reliable  # 3 in 4 run clean


def test_an_unreliable_latency_is_left_out_of_the_latency_column():
    from regnet_space.study.results import trusted_latency

    assert trusted_latency({"latency_ms": 1.5, "latency_reliable": True}) == 1.5
    assert trusted_latency({"latency_ms": 45.0, "latency_reliable": False}) is None
    assert trusted_latency({"latency_ms": 2.0}) == 2.0  # studies from before the flag

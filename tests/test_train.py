"""The proxy trainer: it learns, fails as data (diverged, timeout), is seeded, and leaves the caller's state alone."""

from __future__ import annotations

import json
import math

import pytest
import torch

from regnet_space import RegNetParams, UserError
from regnet_space.cli import main
from regnet_space.proxy.data import FASHION_MNIST_DIR, FASHION_MNIST_FILES, load_dataset
from regnet_space.proxy.train import ProxyConfig, learning_rate, train_model

TINY = "depth=2,w0=8,wa=8,wm=2.0,group_width=8,stem_width=8"
# Enough steps for the synthetic set to be learned: 410 training images, batches of 32, 6 epochs = 72 steps.
QUICK = ProxyConfig(epochs=6, batch_size=32, lr=0.2, train_fraction=1.0, warmup_epochs=1)
HAS_FASHION_MNIST = (FASHION_MNIST_DIR / FASHION_MNIST_FILES["train"][0]).exists()


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", val_size=100)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_spec(dataset):
    params = RegNetParams(depth=2, w0=8, wa=8, wm=2.0, group_width=8, stem_width=8)
    return params.to_spec(resolution=dataset.resolution, in_channels=dataset.in_channels,
                          num_classes=dataset.num_classes)


def test_learns_the_synthetic_set(synthetic):
    result = train_model(tiny_spec(synthetic), synthetic, QUICK, progress=False, report_test=True)
    assert result.status == "ok" and result.epochs == 6 and result.diverged_epoch is None
    assert result.val_error < 15 and result.test_error < 15  # chance is 75% with 4 classes
    assert result.best_val_error == min(result.val_curve) <= result.val_error
    assert len(result.loss_curve) == 6 and result.loss_curve[-1] < result.loss_curve[0]
    assert result.images_per_s > 0 and result.seconds > 0
    assert json.loads(json.dumps(result.to_dict()))["status"] == "ok"


def test_same_seed_same_run_other_seed_other_run(synthetic):
    config = QUICK.replace(epochs=2)
    a = train_model(tiny_spec(synthetic), synthetic, config, seed=4, progress=False)
    b = train_model(tiny_spec(synthetic), synthetic, config, seed=4, progress=False)
    c = train_model(tiny_spec(synthetic), synthetic, config, seed=5, progress=False)
    assert a.loss_curve == b.loss_curve and a.val_curve == b.val_curve
    assert a.loss_curve != c.loss_curve


def test_huge_lr_is_reported_as_diverged(synthetic):
    result = train_model(tiny_spec(synthetic), synthetic, QUICK.replace(lr=1000.0), progress=False)
    assert result.status == "diverged" and result.diverged_epoch == 1
    assert result.val_error is None and result.epochs == 0


def test_time_limit_is_reported_as_timeout(synthetic):
    result = train_model(tiny_spec(synthetic), synthetic, QUICK, time_limit=0.0, progress=False)
    assert result.status == "timeout"
    assert result.epochs < QUICK.epochs


def test_caller_rng_and_threads_are_left_alone(synthetic):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    torch.set_num_threads(2)
    result = train_model(tiny_spec(synthetic), synthetic, QUICK.replace(epochs=1), threads=1, progress=False)
    assert torch.equal(torch.rand(3), expected)
    assert result.threads == 1 and torch.get_num_threads() == 2


def test_model_must_fit_the_data(synthetic):
    spec = tiny_spec(synthetic).with_input(num_classes=10)
    with pytest.raises(UserError, match="does not fit"):
        train_model(spec, synthetic, QUICK, progress=False)


def test_compile_is_cuda_only(synthetic):
    with pytest.raises(UserError, match="compile"):
        train_model(tiny_spec(synthetic), synthetic, QUICK.replace(compile=True), progress=False)


def test_schedule_warms_up_then_decays_to_zero():
    config = ProxyConfig(lr=0.5, warmup_factor=0.1)
    lrs = [learning_rate(config, step, 100, 10) for step in range(101)]
    assert lrs[0] == pytest.approx(0.05) and lrs[10] == pytest.approx(0.5)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[55] == pytest.approx(0.25) and lrs[100] == pytest.approx(0.0, abs=1e-12)


def test_config_round_trip_and_validation():
    config = ProxyConfig(epochs=3, lr=0.1, label_smoothing=0.1)
    assert ProxyConfig.from_dict(config.to_dict()) == config
    assert ProxyConfig.from_dict({"epochs": 4}).epochs == 4
    with pytest.raises(UserError, match="proxy.epoch"):
        ProxyConfig.from_dict({"epoch": 4})
    with pytest.raises(UserError, match="proxy.train_fraction"):
        ProxyConfig(train_fraction=1.5)
    with pytest.raises(UserError, match="proxy.precision"):
        ProxyConfig(precision="fp8")


def test_no_weight_decay_on_norm_and_bias(synthetic):
    """Conv and linear weights decay; BN parameters and biases (1-D) do not, and every parameter is in a group."""
    from regnet_space import AnyNet
    from regnet_space.proxy.train import _param_groups

    model = AnyNet(tiny_spec(synthetic))
    groups = _param_groups(model, ProxyConfig(weight_decay=0.1))
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in groups[0]["params"]) and all(p.ndim == 1 for p in groups[1]["params"])
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def run_cli(capsys, *argv):
    code = main(["train", *argv, "--no-progress", "--threads", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_on_synthetic(capsys):
    code, out, _ = run_cli(capsys, "--regnet", TINY, "--dataset", "synthetic", "--epochs", "2",
                           "--train-fraction", "1", "--batch-size", "32", "--json")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "ok" and result["epochs"] == 2
    assert {"val_error", "best_val_error", "images_per_s", "seconds"} <= set(result)
    assert math.isfinite(result["val_error"])


def test_cli_truncated_idx_exits_2_naming_the_file(tmp_path, capsys):
    from test_data import fake_fashion_mnist

    fake_fashion_mnist(tmp_path)
    victim = tmp_path / FASHION_MNIST_FILES["test"][1]
    victim.write_bytes(victim.read_bytes()[:-5])  # cut the gzip stream short
    code, _, err = run_cli(capsys, "--regnet", TINY, "--data-dir", str(tmp_path))
    assert code == 2 and victim.name in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="Fashion-MNIST not installed")
def test_cli_fashion_mnist_huge_lr_diverges_and_exits_0(capsys):
    code, out, _ = run_cli(capsys, "--regnet", "depth=6,w0=16,wa=12,wm=2.0,group_width=8", "--epochs", "1",
                           "--train-fraction", "0.3", "--lr", "1000", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "diverged" and result["diverged_epoch"] == 1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="Fashion-MNIST not installed")
def test_cli_fashion_mnist_learns_in_one_short_epoch(capsys):
    code, out, _ = run_cli(capsys, "--regnet", "depth=6,w0=16,wa=12,wm=2.0,group_width=8", "--epochs", "1",
                           "--train-fraction", "0.3", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "ok" and result["val_error"] < 20


def test_auto_precision_avoids_bf16_for_narrow_groups(synthetic):
    from regnet_space.proxy.train import _use_bf16

    cpu = torch.device("cpu")
    narrow = RegNetParams(depth=2, w0=8, wa=8, wm=2.0, group_width=1).to_spec()
    wide = RegNetParams(depth=2, w0=8, wa=8, wm=2.0, group_width=8).to_spec()
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert not _use_bf16("auto", cpu, narrow)
    assert _use_bf16("auto", cpu, wide) == native
    assert _use_bf16("bf16", cpu, narrow) and not _use_bf16("fp32", cpu, wide)
    result = train_model(tiny_spec(synthetic), synthetic, QUICK.replace(epochs=1, precision="fp32",
                                                                       channels_last=False), progress=False)
    assert result.precision == "fp32" and result.channels_last is False and result.status == "ok"


@pytest.mark.skipif(not HAS_FASHION_MNIST, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_evaluation_in_small_batches_predicts_what_one_big_no_grad_batch_does(precision):
    """The cheaper evaluation (inference_mode, batches of 256) gives the same prediction for every image as the
    previous one (no_grad, batches of 2,000), on a trained model and real data."""
    from regnet_space.proxy.train import _Run

    data = load_dataset("fashion-mnist", val_size=3000)
    spec = RegNetParams(depth=4, w0=16, wa=8, wm=2.0, group_width=8, stem_width=8).to_spec(
        resolution=28, in_channels=1, num_classes=10)
    config = ProxyConfig(train_fraction=0.05, precision=precision)
    torch.manual_seed(0)
    run = _Run(spec, data, config, torch.device("cpu"), precision == "bf16", True, 0)
    run.train(0.0, None, False)
    predicted = run.predict(data.val_x)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        run.model.eval()
        before = torch.cat([run.model(data.val_x[i:i + 2000].contiguous(memory_format=torch.channels_last)).argmax(1)
                            for i in range(0, 3000, 2000)])
    assert predicted.shape == (3000,) and torch.equal(predicted, before)
    assert (predicted != data.val_y).float().mean() < 0.8 and len(predicted.unique()) >= 5  # learned (chance: 0.9)


def test_validation_error_is_measured_on_eval_images_of_the_split(synthetic):
    """``eval_images`` evaluates the first images of the validation split (a seeded random subset): the same
    error as training on the same data with a validation split of just those images."""
    import dataclasses

    few = train_model(tiny_spec(synthetic), synthetic, QUICK.replace(epochs=1, eval_images=7), progress=False)
    cut = dataclasses.replace(synthetic, val_x=synthetic.val_x[:7], val_y=synthetic.val_y[:7])
    whole = train_model(tiny_spec(synthetic), cut, QUICK.replace(epochs=1, eval_images=None), progress=False)
    assert len(synthetic.val_y) == 100 and few.val_error == whole.val_error
    assert round(few.val_error * 7 / 100, 6).is_integer()

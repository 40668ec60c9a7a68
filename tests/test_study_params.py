"""Sampled parameters are real Optuna params: every sampled dimension is a ``params_*`` column, importances are
computed, the recorded value is the one the network uses, and studies with params only in user attributes load."""

import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from regnet_space.spaces import load_space, sample_models
from regnet_space.study.params import space_distributions, used_params
from regnet_space.study.trials import decode_params, waiting_trial

ROOT = Path(__file__).resolve().parent.parent
SPACES = ("anynetx_a", "anynetx_e", "regnetx", "regnety", str(ROOT / "experiments/spaces/resnet_family.toml"))


def study_of(space_name, n=12, *, resolution=8, flops=4e5):
    space = load_space(space_name)
    models = sample_models(space, n, seed=1, resolution=resolution, in_channels=1, num_classes=4,
                           windows={"flops": (0, flops)}, input_form="imagenet")  # its stems are dimensions
    study = optuna.create_study(direction="minimize")
    dists = space_distributions(space)
    for k, model in enumerate(models):
        trial = waiting_trial(space.name, k, model, dists)
        # As a worker finishes it: same params, an error that depends on the model.
        trial = optuna.trial.create_trial(state=TrialState.COMPLETE, value=float(k % 5) + trial.user_attrs["flops"] / 1e5,
                                          params=trial.params, distributions=trial.distributions,
                                          user_attrs=trial.user_attrs)
        study.add_trial(trial)
    return study, models


@pytest.mark.parametrize("space_name", SPACES)
def test_every_sampled_parameter_is_a_params_column(space_name):
    study, models = study_of(space_name)
    columns = {c[len("params_"):] for c in study.trials_dataframe().columns if c.startswith("params_")}
    assert columns == set(models[0].params)
    for trial, model in zip(study.trials, models):
        assert trial.params == used_params(model)
        assert decode_params(trial) == used_params(model)


def test_distributions_follow_the_space_dimensions():
    dists = space_distributions(load_space("regnetx"))
    assert dists["depth"] == IntDistribution(1, 40)
    assert dists["w0"] == IntDistribution(8, 248, log=True)
    assert dists["wa"] == FloatDistribution(8.0, 255.9, log=True)
    assert dists["group_width"] == IntDistribution(1, 32, log=True)
    assert dists["bottleneck_ratio"] == CategoricalDistribution((1.0,))
    anynet = space_distributions(load_space("anynetx_a"))
    assert anynet["w3"] == IntDistribution(8, 1024, log=True) and anynet["b2"] == FloatDistribution(1.0, 4.0, log=True)
    family = space_distributions(load_space(str(ROOT / "experiments/spaces/resnet_family.toml")))
    assert family["block1"] == CategoricalDistribution(("res_basic", "res_bottleneck"))
    assert family["b1"] == CategoricalDistribution((4.0, 1.0))  # fixed, plus the default a reset gives


def test_a_reset_parameter_records_the_value_the_spec_uses():
    """resnet_family fixes b = 4 for every stage; a res_basic stage has no bottleneck and uses b = 1."""
    study, models = study_of(str(ROOT / "experiments/spaces/resnet_family.toml"), n=20, resolution=28, flops=2e8)
    basic = [(t, m, i) for t, m in zip(study.trials, models) for i, s in enumerate(m.spec.stages) if s.block == "res_basic"]
    assert basic
    for trial, model, i in basic:
        assert model.params[f"b{i + 1}"] == 4.0  # as the space gives it
        assert trial.params[f"b{i + 1}"] == model.spec.stages[i].bottleneck_ratio == 1.0
        assert trial.params[f"w{i + 1}"] == model.spec.stages[i].width


def test_importances_are_computed_from_the_params():
    study, _ = study_of("anynetx_a", n=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importances = optuna.importance.get_param_importances(study)  # Optuna's default evaluator
    assert len(importances) == 16 and abs(sum(importances.values()) - 1) < 1e-6


def test_a_study_with_params_only_in_user_attributes_still_loads():
    legacy = optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0,
                                       user_attrs={"space": "regnetx", "model_index": 0, "param_depth": 13, "param_w0": 24})
    assert decode_params(legacy) == {"depth": 13, "w0": 24}


def test_a_pycls_sweep_space_enqueues_with_its_group_width_mixture():
    """pycls's GROUP_W sampler (power2_or_log_uniform) becomes an int log-scale distribution over its range."""
    study, models = study_of(str(ROOT / "experiments/paper/spaces/cifar_regnet.yaml"), n=12, resolution=32, flops=2e8)
    assert len(study.trials) == 12
    assert all(t.distributions["group_width"] == IntDistribution(1, 32, log=True) for t in study.trials)
    assert [t.params["group_width"] for t in study.trials] == [m.spec.stages[0].group_width for m in models]


def test_a_value_the_group_rule_moves_off_a_categorical_is_kept_as_a_user_attribute():
    """A design candidate fixes g2 = 8; in a stage whose bottleneck is 4 channels wide (w 8, b 2) the network
    uses g = 4, which the one-value categorical cannot list (Optuna needs the same choices in every trial of a
    study): the model is enqueued with g2 as a user attribute and read back as 4 (it stopped a design run)."""
    import dataclasses

    space = load_space("anynetx_a")
    space = dataclasses.replace(space, stage={**space.stage, "group_width": 8}, name="anynetx_a_g8")
    models = sample_models(space, 40, seed=0, resolution=28, in_channels=1, num_classes=10,
                           windows={"flops": (0, 2e7)})
    moved = [m for m in models if any(s.group_width != 8 for s in m.spec.stages)]
    assert moved, "no model whose group width the rule moved"
    dists = space_distributions(space)
    study = optuna.create_study(direction="minimize")
    for k, model in enumerate(moved):
        trial = waiting_trial(space.name, k, model, dists)
        study.add_trial(trial)
        used = used_params(model)
        assert decode_params(trial) == used
        for i, stage in enumerate(model.spec.stages):
            key = f"g{i + 1}"
            assert (key in trial.params) == (stage.group_width == 8)
            assert used[key] == stage.group_width

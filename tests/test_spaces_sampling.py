"""Sampling design spaces: determinism, constraints, windows, declared distributions, the fast path."""

import itertools
import json

import numpy as np
import pytest
from scipy import stats

from regnet_space import RegNetParams, complexity
from regnet_space.cli import main
from regnet_space.errors import UserError
from regnet_space.models.regnet import make_compatible, quantized_block_widths, runs
from regnet_space.spaces import load_space, parse_window, sample_models
from regnet_space.spaces import vectorized
from regnet_space.spaces.distributions import Distribution, draw_non_decreasing, parse_distribution
from regnet_space.spaces.sampling import _Sampler
from regnet_space.spaces.space import parse_toml

WINDOW_400MF = {"flops": parse_window("360M:400M")}
MNIST = dict(resolution=28, in_channels=1, num_classes=10)
MNIST_WINDOWS = {"flops": parse_window("5M:50M"), "params": parse_window(":2M")}


def chi_square_p(values, dist: Distribution) -> float:
    """p-value of the draws against the distribution's exact pmf, merging neighbouring values until every
    expected count is >= 5."""
    support = dist.values.tolist()
    index = {v: i for i, v in enumerate(support)}
    counts = np.bincount([index[v] for v in values], minlength=len(support))
    expected = dist.pmf() * len(values)
    observed_bins, expected_bins, o, e = [], [], 0.0, 0.0
    for count, mass in zip(counts, expected):
        o, e = o + count, e + mass
        if e >= 5:
            observed_bins.append(o)
            expected_bins.append(e)
            o = e = 0.0
    observed_bins[-1] += o
    expected_bins[-1] += e
    return stats.chisquare(observed_bins, expected_bins).pvalue


def dist(**table) -> Distribution:
    return parse_distribution(table, "test", float if any(isinstance(v, float) for v in table.values()) else int)


@pytest.mark.parametrize("d", [
    dist(dist="log_uniform", lo=1, hi=16),
    dist(dist="log_uniform", lo=8, hi=1024, q=8),
    dist(dist="log_uniform", lo=8.0, hi=255.9, q=0.1),
    dist(dist="uniform", lo=1, hi=40),
    dist(dist="uniform", lo=2.0, hi=3.0, q=0.25),
    dist(dist="power2", lo=1, hi=32),
    dist(dist="power2", lo=0.25, hi=4.0),
    dist(dist="choice", values=[3, 5, 7]),
], ids=lambda d: f"{d.kind}-{d.lo}-{d.hi}-{d.q}")
def test_each_distribution_draws_its_declared_pmf(d):
    values = d.values[d.draw(np.random.default_rng(0), 4000)].tolist()
    assert set(values) <= set(d.values.tolist())
    assert chi_square_p(values, d) > 1e-3
    # The test has power: the same draws against the uniform distribution on the support fail it when the
    # declared pmf is far from uniform (log-uniform on a wide range).
    if d.kind == "log_uniform" and d.hi / d.lo > 30:
        uniform = Distribution("uniform", d.lo, d.hi, d.q)
        assert chi_square_p(values, uniform) < 1e-6


def test_pycls_semantics_of_quantized_values():
    wa = dist(dist="log_uniform", lo=8.0, hi=255.9, q=0.1)
    assert wa.values[:3].tolist() == [8.0, 8.1, 8.2] and wa.values[-1] == 255.9 and len(wa) == 2480
    depth = dist(dist="log_uniform", lo=1, hi=16)
    # (0.5, 16] log-uniform, ceiled: P(1) = log(1/0.5) / log(16/0.5) = 1/5.
    assert depth.pmf()[0] == pytest.approx(0.2) and depth.pmf().sum() == pytest.approx(1)
    assert dist(dist="power2", lo=1, hi=32).values.tolist() == [1, 2, 4, 8, 16, 32]


def test_non_decreasing_draws_are_the_restricted_product():
    d = dist(dist="log_uniform", lo=1, hi=6)
    draws = np.stack(draw_non_decreasing([d] * 3, np.random.default_rng(0), 6000), axis=1)
    assert np.all(np.diff(draws, axis=1) >= 0)
    # Exact law: the product pmf on all 6^3 triples, restricted to the non-decreasing ones.
    triples = [t for t in itertools.product(range(6), repeat=3) if t[0] <= t[1] <= t[2]]
    p = np.array([np.prod(d.pmf()[list(t)]) for t in triples])
    observed = [np.sum(np.all(draws == d.values[list(t)], axis=1)) for t in triples]
    assert stats.chisquare(observed, p / p.sum() * len(draws)).pvalue > 1e-3


def test_anynetx_a_parameters_follow_their_declared_distributions():
    space = load_space("anynetx_a")
    models = sample_models(space, 3000, seed=0)
    for name, field in (("d", "depth"), ("w", "width"), ("b", "bottleneck_ratio"), ("g", "group_width")):
        for stage in (1, 4):
            values = [m.params[f"{name}{stage}"] for m in models]
            assert chi_square_p(values, space.stage[field]) > 1e-3, f"{name}{stage}"


def test_regnetx_draws_follow_their_declared_distributions():
    """The draws before the stage-count rule (which keeps ~10% of them, so skews the kept ones' marginals)."""
    space = load_space("regnetx")
    sampler = _Sampler(space, resolution=224, in_channels=3, num_classes=1000, vectorized=True)
    columns = sampler.draw(np.random.default_rng(0))
    for name in ("depth", "w0", "wa", "wm", "group_width"):
        assert chi_square_p(columns[name].tolist(), space.regnet[name]) > 1e-3, name


def _population(name, **kwargs):
    return [json.dumps({"spec": m.spec.to_dict(), "params": m.params}) for m in
            sample_models(name, 40, **kwargs)]


def test_same_seed_same_population_other_seed_other():
    a = _population("anynetx_c", seed=7, windows=WINDOW_400MF)
    assert a == _population("anynetx_c", seed=7, windows=WINDOW_400MF)
    assert a != _population("anynetx_c", seed=8, windows=WINDOW_400MF)
    # Model k depends on the seed alone, not on how many are asked for.
    assert _population("regnetx", seed=1)[:10] == [json.dumps({"spec": m.spec.to_dict(), "params": m.params})
                                                   for m in sample_models("regnetx", 10, seed=1)]


def test_sample_command_is_byte_identical(capsys, tmp_path):
    argv = ["sample", "anynetx_a", "-n", "5", "--flops", "360M:400M", "--seed", "3"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0 and capsys.readouterr().out == first
    assert main(argv[:-1] + ["4"]) == 0 and capsys.readouterr().out != first
    out = tmp_path / "samples.jsonl"
    assert main(argv + ["--out", str(out)]) == 0 and out.read_text() == first
    lines = [json.loads(line) for line in first.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert 360e6 <= line["flops"] <= 400e6 and line["space"] == "anynetx_a"
        assert {"widths", "depths", "group_widths", "bottleneck_ratios", "params", "acts", "spec"} <= set(line)
        assert sorted(line["sampled"]) == sorted(f"{p}{i}" for p in "dwbg" for i in range(1, 5))


def _check_form(spec):
    """Below 128 px the built-in spaces take the small-image form: CIFAR stem, strides 1,2,2,2, no stage < 4 px."""
    if spec.resolution < 128:
        assert (spec.stem.type, spec.stem.width) == ("cifar", 16)
        assert [s.stride for s in spec.stages] == [1, 2, 2, 2]
        assert min(spec.stage_resolutions()) >= 4
    else:
        assert (spec.stem.type, spec.stem.width) == ("simple", 32)
        assert all(s.stride == 2 for s in spec.stages)


def _check_anynet(space, model):
    spec, p = model.spec, model.params
    stages = spec.stages
    assert len(stages) == 4 and all(s.block == "res_bottleneck" for s in stages)
    _check_form(spec)
    widths, groups = make_compatible([p[f"w{i}"] for i in range(1, 5)], [p[f"b{i}"] for i in range(1, 5)],
                                     [p[f"g{i}"] for i in range(1, 5)])
    assert spec.widths == widths and spec.group_widths == groups and spec.depths == [p[f"d{i}"] for i in range(1, 5)]
    assert spec.bottleneck_ratios == [p[f"b{i}"] for i in range(1, 5)]
    for field, alias in (("depth", "d"), ("width", "w"), ("bottleneck_ratio", "b"), ("group_width", "g")):
        assert all(p[f"{alias}{i}"] in space.stage[field].values for i in range(1, 5))
    if "bottleneck_ratio" in space.shared:
        assert len(set(spec.bottleneck_ratios)) == 1
    if "group_width" in space.shared:  # one g drawn; a stage may cap it at w/b
        assert len({p[f"g{i}"] for i in range(1, 5)}) == 1
        assert all(s.group_width == min(p["g1"], s.bottleneck_width) for s in stages)
    for field in space.monotone:
        values = [getattr(s, field) for s in stages]
        assert values == sorted(values)


def _check_regnet(space, model):
    spec, p = model.spec, model.params
    _check_form(spec)
    assert model.regnet == RegNetParams(**p, stem_type=spec.stem.type, stem_width=spec.stem.width,
                                        first_stride=spec.stages[0].stride)
    # Exactly quantized-linear: the spec is what the RegNet rule makes of the sampled parameters, with
    # exactly 4 stages and no skipped exponent.
    assert spec == model.regnet.to_spec(resolution=spec.resolution, in_channels=spec.in_channels,
                                        num_classes=spec.num_classes)
    widths, depths = runs(quantized_block_widths(p["depth"], p["w0"], p["wa"], p["wm"]))
    assert (spec.depths, len(widths)) == (depths, 4)
    assert widths == [8 * round(p["w0"] * p["wm"] ** k / 8) for k in range(4)]
    for name, value in space.regnet.items():
        assert p[name] in value.values if isinstance(value, Distribution) else p[name] == value
    if space.name != "regnet":
        assert p["bottleneck_ratio"] == 1 and p["depth"] <= 40 and p["wm"] >= 2
    assert p["se_ratio"] == (0.25 if space.name == "regnety" else 0)


@pytest.mark.parametrize("name", ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e",
                                  "regnet", "regnetx", "regnety"])
@pytest.mark.parametrize("data, windows", [({}, WINDOW_400MF), (MNIST, MNIST_WINDOWS)], ids=["imagenet", "mnist"])
def test_every_sample_meets_its_constraints_and_window(name, data, windows):
    space = load_space(name)
    models = sample_models(space, 100, seed=0, windows=windows, **data)
    for model in models:
        (_check_regnet if space.is_regnet else _check_anynet)(space, model)
        cx = complexity(model.spec)
        for metric, (lo, hi) in windows.items():
            assert lo <= getattr(cx, metric) <= hi
        assert model.spec.resolution == data.get("resolution", 224)


@pytest.mark.parametrize("name, data, windows", [
    ("anynetx_a", {}, WINDOW_400MF), ("anynetx_e", MNIST, MNIST_WINDOWS), ("regnet", {}, WINDOW_400MF),
    ("regnety", MNIST, MNIST_WINDOWS), ("anynetx_b", dict(resolution=64, num_classes=100), {"acts": (1e5, 4e5)}),
])
def test_vectorised_prefilter_gives_the_per_draw_result(name, data, windows):
    fast = sample_models(name, 15, seed=2, windows=windows, **data)
    slow = sample_models(name, 15, seed=2, windows=windows, vectorized=False, **data)
    assert [(m.spec, m.params) for m in fast] == [(m.spec, m.params) for m in slow]


def test_vectorised_complexity_and_compatibility_are_exact():
    rng = np.random.default_rng(0)
    w = np.repeat(np.arange(8, 1032, 8), 48)
    b = rng.choice([0.25, 0.5, 1.0, 2.0, 4.0], len(w))
    g = rng.choice([0, 1, 2, 4, 8, 16, 24, 32, 48], len(w))
    vw, vg = vectorized.make_compatible(w, b, g)
    for i in range(len(w)):
        expected = ([w[i]], [g[i]]) if g[i] == 0 else make_compatible([int(w[i])], [float(b[i])], [int(g[i])])
        assert (vw[i], vg[i]) == (expected[0][0], expected[1][0])
    for model in sample_models("regnety", 30, seed=4, resolution=32, vectorized=False):
        stages = [{k: np.array([getattr(s, k)]) for k in ("depth", "width", "bottleneck_ratio", "group_width",
                                                          "se_ratio")} for s in model.spec.stages]
        metrics = vectorized.x_network_complexity(model.spec.stem, model.spec.head, stages,
                                                  [s.stride for s in model.spec.stages],
                                                  resolution=32, in_channels=3, num_classes=1000)
        cx = complexity(model.spec)
        assert {k: int(v[0]) for k, v in metrics.items()} == {k: getattr(cx, k) for k in metrics}


def test_regnet_stage_rule_vectorised_matches_per_model():
    space = load_space("regnet")
    rng = np.random.default_rng(0)
    n = 20000
    draws = {k: space.regnet[k].values[space.regnet[k].draw(rng, n)] for k in ("depth", "w0", "wa", "wm")}
    valid, widths, depths = vectorized.regnet_stages(draws["depth"], draws["w0"], draws["wa"], draws["wm"], 8, 4)
    for i in range(n):
        d, w0, wa, wm = (draws[k][i].item() for k in ("depth", "w0", "wa", "wm"))
        block_widths = quantized_block_widths(d, w0, wa, wm)
        stage_widths, stage_depths = runs(block_widths)
        last_k = round(np.log((w0 + wa * (d - 1)) / w0) / np.log(wm))
        ok = len(stage_widths) == 4 and last_k == 3
        assert valid[i] == ok
        if ok:
            assert [int(x[i]) for x in widths] == stage_widths and [int(x[i]) for x in depths] == stage_depths
    assert 0.02 < valid.mean() < 0.5


CUSTOM = """
name = "blocks"
input_form = "imagenet"  # the space's own stems and strides, as written, at every input size
num_stages = 3
[stem]
type = { dist = "choice", values = ["simple", "cifar"] }
width = 16
[stage]
block = { dist = "choice", values = ["res_basic", "res_bottleneck", "vanilla"] }
depth = { dist = "uniform", lo = 1, hi = 3 }
width = { dist = "log_uniform", lo = 16, hi = 128, q = 8 }
bottleneck_ratio = { dist = "power2", lo = 1.0, hi = 4.0 }
group_width = { dist = "power2", lo = 1, hi = 16 }
se_ratio = { dist = "choice", values = [0.0, 0.25] }
shortcut = { dist = "choice", values = ["conv", "avgpool"] }
[stages.1]
stride = 1
[constraints]
monotone = ["width"]
"""


def test_custom_space_with_block_family_dimensions():
    space = parse_toml(CUSTOM, "custom")
    models = sample_models(space, 200, seed=0, windows={"params": (0, 5e5)}, **MNIST)
    seen = set()
    for model in models:
        stages = model.spec.stages
        assert stages[0].stride == 1 and all(s.stride == 2 for s in stages[1:])
        assert model.spec.widths == sorted(model.spec.widths) and complexity(model.spec).params <= 5e5
        for s in stages:
            seen.add((s.block, s.shortcut, s.se_ratio > 0))
            if s.block != "res_bottleneck":  # values these blocks do not take are reset to the defaults
                assert (s.bottleneck_ratio, s.group_width) == (1.0, 0)
            if s.block == "vanilla":
                assert s.se_ratio == 0 and s.shortcut == "conv"
        assert set(model.params) >= {"block1", "shortcut2", "se_ratio3", "stem_type", "d1", "w3"}
    assert {"simple", "cifar"} == {m.spec.stem.type for m in models}
    assert {b for b, _, _ in seen} == {"res_basic", "res_bottleneck", "vanilla"}
    assert ("res_bottleneck", "avgpool", True) in seen


def test_a_window_that_cannot_be_met_stops_with_the_span():
    with pytest.raises(UserError) as error:
        sample_models("anynetx_a", 3, seed=0, windows={"flops": (1.0, 2.0)}, max_draws=50_000)
    message = str(error.value)
    assert message.startswith("space anynetx_a: only 0 of 3 models found in 50,000 draws (flops 1:2)")
    assert "spanned flops" in message and "M to " in message and "G" in message
    with pytest.raises(UserError, match="window on 'latency': not one of flops, params, acts, mac"):
        sample_models("anynetx_a", 1, seed=0, windows={"latency": (0, 1)})

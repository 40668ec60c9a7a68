"""experiments/paper/: the RegNet paper's 400MF sweeps and pycls's CIFAR RegNet sweep as study specs. Each
spec loads; each of its spaces is sampled in the spec's form and window, and the population is held to the
paper's (or pycls's) definition of that space: ranges, constraints, the window, and a window hit rate that
makes the spec's n reachable."""

import math
from pathlib import Path

import pytest

from regnet_space.models.complexity import complexity
from regnet_space.spaces import load_space
from regnet_space.spaces.sampling import sample_with_stats
from regnet_space.study import load_study_spec

PAPER = Path(__file__).parent.parent / "experiments" / "paper"
SAMPLED = 40


def population(spec_path, label, resolution, num_classes):
    entry = load_study_spec(spec_path).entry(label)
    models, stats = sample_with_stats(load_space(entry.space), SAMPLED, seed=0, windows=entry.windows,
                                      resolution=resolution, num_classes=num_classes,
                                      input_form=entry.input_form)
    lo, hi = entry.windows["flops"]
    assert all(lo <= complexity(m.spec).flops <= hi for m in models)
    return entry, models, stats.accepted / stats.drawn


def stage_values(model, letter):
    return [model.params[f"{letter}{i}"] for i in range(1, 5)]


def test_the_400mf_spec_is_the_papers_setup():
    spec = load_study_spec(PAPER / "anynet_regnet_400mf.toml")
    assert [e.label for e in spec.spaces] == ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e",
                                              "regnet", "regnetx"]
    assert {e.n for e in spec.spaces} == {500} and spec.proxy["epochs"] == 10
    assert spec.dataset["name"].startswith("folder:") and spec.spaces[0].windows["flops"] == (360e6, 400e6)


# Window hit rates measured with seed 0 (accepted / drawn, 40 models): A 2.69%, B 2.15%, C 2.18%, D 1.80%,
# E 1.72%, RegNet 0.211%, RegNetX 0.182%, pycls's CIFAR sweep 0.242%. The floors are half of those: n = 500
# then takes under 600,000 draws, well inside the sampler's limit of 1,000,000 + 1,000 n.
@pytest.mark.parametrize("label, min_hit_rate", [("anynetx_a", 0.013), ("anynetx_b", 0.01), ("anynetx_c", 0.01),
                                                 ("anynetx_d", 0.009), ("anynetx_e", 0.0085)])
def test_anynetx_populations_match_the_paper(label, min_hit_rate):
    _, models, hit_rate = population(PAPER / "anynet_regnet_400mf.toml", label, 224, 1000)
    assert hit_rate >= min_hit_rate
    for m in models:
        d, w, b, g = (stage_values(m, x) for x in "dwbg")
        assert m.spec.stem.type == "simple" and m.spec.stem.width == 32 and m.spec.resolution == 224
        assert [s.stride for s in m.spec.stages] == [2, 2, 2, 2]
        assert all(1 <= x <= 16 for x in d) and all(x % 8 == 0 and 8 <= x <= 1024 for x in w)
        assert set(b) <= {1, 2, 4} and set(g) <= {1, 2, 4, 8, 16, 32}
        if label >= "anynetx_b":
            assert len(set(b)) == 1  # B: shared bottleneck ratio
        if label >= "anynetx_c":
            assert len(set(g)) == 1  # C: shared group width
        if label >= "anynetx_d":
            assert w == sorted(w)  # D: non-decreasing widths
        if label >= "anynetx_e":
            assert d == sorted(d)  # E: non-decreasing depths


@pytest.mark.parametrize("label", ["regnet", "regnetx"])
def test_regnet_populations_match_the_paper(label):
    _, models, hit_rate = population(PAPER / "anynet_regnet_400mf.toml", label, 224, 1000)
    assert hit_rate >= 0.0009
    for m in models:
        p = m.params
        assert len(m.spec.stages) == 4 and p["w0"] < 256 and p["wa"] < 256 and 1.5 <= p["wm"] <= 3
        assert p["depth"] < 64 and p["bottleneck_ratio"] in (1, 2, 4) and p["se_ratio"] == 0
        if label == "regnetx":  # §4: b = 1, d <= 40, wm >= 2, params < 3 + 5.5 F and acts < 6.5 sqrt(F)
            gflops = complexity(m.spec).flops / 1e9
            assert p["bottleneck_ratio"] == 1 and p["depth"] <= 40 and p["wm"] >= 2
            assert complexity(m.spec).params / 1e6 < 3 + 5.5 * gflops
            assert complexity(m.spec).acts / 1e6 < 6.5 * math.sqrt(gflops)


def test_the_pycls_cifar_sweep_matches_its_sweep_config():
    """pycls's cifar_regnet: regnet_sampler DEPTH [6, 16], GROUP_W [1, 32] (power2_or_log_uniform, q 8), W0
    [8, 256], WA [8, 256], WM [2, 3]; SE 0.25, CIFAR stem of 16, 2 stages; 120-130 MFLOPs, params <= 2M,
    acts <= 1M."""
    spec = load_study_spec(PAPER / "pycls_cifar_regnet.toml")
    assert spec.spaces[0].n == 32 and spec.proxy["epochs"] == 50 and spec.dataset["name"].startswith("cifar10:")
    _, models, hit_rate = population(PAPER / "pycls_cifar_regnet.toml", "cifar_regnet", 32, 10)
    assert hit_rate >= 0.0012
    groups = set()
    for m in models:
        p, cx = m.params, complexity(m.spec)
        assert 6 <= p["depth"] <= 16 and p["w0"] % 8 == 0 and 8 <= p["w0"] <= 256 and 8 <= p["wa"] <= 256
        assert 2 <= p["wm"] <= 3 and p["bottleneck_ratio"] == 1 and p["se_ratio"] == 0.25
        assert p["group_width"] in (1, 2, 4) or (p["group_width"] % 8 == 0 and 8 <= p["group_width"] <= 32)
        assert len(m.spec.stages) == 2 and m.spec.stem.type == "cifar" and m.spec.stem.width == 16
        assert [s.stride for s in m.spec.stages] == [2, 2] and cx.params <= 2e6 and cx.acts <= 1e6
        groups.add(p["group_width"])
    assert groups & {1, 2, 4} and groups & {8, 16, 24, 32}  # both parts of pycls's group-width mixture

"""The fidelity-per-cost curve's bookkeeping and statistics (analysis/proxy_fidelity/cost_curve.py), on synthetic
tables: no training. The curve decides the default proxy, so its summary must rank proxies, compare spaces and
apply the choice rule correctly before hours of CPU are spent on it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "analysis" / "proxy_fidelity"))

import cost_curve  # noqa: E402
from cost_curve import Job, Proxy, choose_default, one_sided_permutation_p, plan, shard_of  # noqa: E402

SPACES = ("anynetx_a", "anynetx_c", "anynetx_e", "regnetx")


def test_proxy_names_parse_and_bad_ones_are_refused():
    default = Proxy.parse("e1-f0.2")
    assert (default.epochs, default.train_fraction, default.width, default.images) == (1, 0.2, 1.0, 0.2)
    assert default.overrides == {"epochs": 1, "train_fraction": 0.2}
    narrow = Proxy.parse("e2-f0.05-w0.5")
    assert (narrow.epochs, narrow.train_fraction, narrow.width) == (2, 0.05, 0.5)
    for bad in ("e0-f0.2", "e1-f1.5", "e1-f0", "e1-f0.2-w2", "1ep-f0.2", "e1"):
        with pytest.raises(ValueError):
            Proxy.parse(bad)


def test_the_width_proxy_halves_the_stages_and_keeps_the_rest():
    from regnet_space.models.complexity import complexity
    from regnet_space.models.spec import AnyNetSpec

    results = pd.read_csv(ROOT / "analysis" / "progression_small" / "results.csv")
    spec = AnyNetSpec.from_json(results.loc[results["space"] == "regnetx", "spec"].iloc[0])
    narrow = Proxy.parse("e1-f0.2-w0.5").model(spec)
    assert [s.width for s in narrow.stages] == [max(8, round(s.width / 2 / 8) * 8) for s in spec.stages]
    assert [s.depth for s in narrow.stages] == [s.depth for s in spec.stages]
    assert (narrow.stem, narrow.resolution) == (spec.stem, spec.resolution)
    assert complexity(narrow).flops < 0.75 * complexity(spec).flops
    assert Proxy.parse("e1-f0.2").model(spec) is spec


def _models(per_space: int) -> pd.DataFrame:
    rows = [{"space": s, "model_index": i, "status": "complete", "val_error": 20.0, "spec": "{}"}
            for i in range(per_space) for s in SPACES]
    return pd.DataFrame(rows)


def test_the_plan_trains_missing_references_only_and_shards_split_it_evenly():
    models = _models(3)
    grid = [Proxy.parse("e1-f0.05"), Proxy.parse("e1-f0.2")]
    have = {(s, i, sched) for s in SPACES for i in range(2) for sched in ("reference", "proxy-seed1")}
    jobs = plan(models, grid, have)
    assert [j.schedule for j in jobs[:12]] == ["e1-f0.05"] * 12  # one proxy over every model, then the next
    extra = [j for j in jobs if j.schedule in ("reference", "proxy-seed1")]
    assert sorted(extra, key=lambda j: j.key) == sorted(
        [Job(s, 2, sched) for s in SPACES for sched in ("reference", "proxy-seed1")], key=lambda j: j.key)
    shards = [shard_of(jobs, k, 2) for k in range(2)]
    assert sorted(j.key for j in shards[0] + shards[1]) == sorted(j.key for j in jobs)
    assert not set(shards[0]) & set(shards[1])
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    # every model is trained by both shards (under different proxies), not always by the same one
    for k in range(2):
        assert {(j.space, j.index) for j in shards[k] if j.schedule in ("e1-f0.05", "e1-f0.2")} == \
            {(s, i) for s in SPACES for i in range(3)}


def test_choose_default_takes_the_cheapest_proxy_the_data_cannot_tell_from_the_best():
    ok = {"same_order": True, "p_one_sided": 0.01}
    proxies = {
        "cheap-bad": {"spearman": 0.46, "spearman_ci": [0.14, 0.68], "cpu_seconds": 5.0,  # overlaps the best's
                      "space_comparison": {"same_order": True, "p_one_sided": 0.29},
                      "spearman_gap_to_best": {"gap": 0.33, "gap_ci": [0.12, 0.60]}},
        "mid": {"spearman": 0.74, "spearman_ci": [0.56, 0.85], "cpu_seconds": 10.0, "space_comparison": ok,
                "spearman_gap_to_best": {"gap": 0.05, "gap_ci": [-0.03, 0.14]}},
        "best": {"spearman": 0.79, "spearman_ci": [0.63, 0.88], "cpu_seconds": 40.0, "space_comparison": ok},
        "unmeasured": {"spearman": 0.95, "spearman_ci": [0.9, 0.99], "cpu_seconds": None, "space_comparison": ok},
    }
    choice = choose_default(proxies, ceiling=None)
    assert (choice["proxy"], choice["best"]) == ("mid", "best")
    assert "cheap-bad" not in choice["qualified"] and "unmeasured" not in choice["qualified"]
    assert choice["qualified"]["mid"] == ["reproduces the space comparison", "not detectably worse than the best"]
    # a paired gap that excludes 0 disqualifies, unless the proxy reaches the noise ceiling
    proxies["mid"]["spearman_gap_to_best"]["gap_ci"] = [0.01, 0.14]
    assert choose_default(proxies, ceiling=None)["proxy"] == "best"
    choice = choose_default(proxies, {"spearman": 0.72, "spearman_ci": [0.55, 0.86]})
    assert choice["proxy"] == "mid" and choice["qualified"]["mid"][-1] == "at or above the noise ceiling"
    # a proxy that cannot reproduce the comparison of the two spaces never qualifies, however well it ranks
    proxies["mid"]["space_comparison"] = {"same_order": False, "p_one_sided": 0.9}
    assert choose_default(proxies, {"spearman": 0.5, "spearman_ci": [0.3, 0.7]})["proxy"] == "best"
    assert choose_default({}, None)["proxy"] is None


def test_one_sided_permutation_p_follows_the_reference_direction():
    rng = np.random.default_rng(3)
    a, b = rng.normal(25, 1, 10), rng.normal(22, 1, 10)
    assert one_sided_permutation_p(a, b, +1, permutations=2000) < 0.01
    assert one_sided_permutation_p(a, b, -1, permutations=2000) > 0.99
    assert one_sided_permutation_p(a, b, 0) == 1.0
    same = rng.normal(22, 1, 20)
    assert 0.05 < one_sided_permutation_p(same[:10], same[10:], +1, permutations=2000) < 0.95


def _synthetic_runs(n_per_space: int = 10, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Models whose true quality the reference sees almost exactly; AnyNetX_A worse than RegNetX by 4 points.
    Proxies: e2-f0.2 nearly the reference, e1-f0.2 noisy (like two proxy seeds), e1-f0.05 pure noise with the two
    spaces reversed. Costs grow with the images."""
    rng = np.random.default_rng(seed)
    models = _models(n_per_space)
    quality = rng.normal(0, 2, len(models)) + np.where(models["space"] == "anynetx_a", 4.0, 0.0)
    models["val_error"] = 20 + quality + rng.normal(0, 1.0, len(models))  # the study's proxy, seed 0
    shifted = np.where(models["space"] == "anynetx_a", -4.0, 0.0)
    errors = {"reference": 10 + quality + rng.normal(0, 0.1, len(models)),
              "proxy-seed1": 20 + quality + rng.normal(0, 1.0, len(models)),
              "e2-f0.2": 15 + quality + rng.normal(0, 0.2, len(models)),
              "e1-f0.2": 20 + quality + rng.normal(0, 1.0, len(models)),
              "e1-f0.05": 30 + shifted + rng.normal(0, 2.0, len(models))}
    cost = {"e1-f0.05": 5.0, "e1-f0.2": 20.0, "e2-f0.2": 40.0, "reference": 200.0, "proxy-seed1": 20.0}
    rows = []
    for schedule, values in errors.items():
        for (space, index), value in zip(models[["space", "model_index"]].itertuples(index=False), values):
            row = {"space": space, "model_index": int(index), "schedule": schedule, "status": "ok",
                   "val_error": float(value), "seconds": cost[schedule] * 1.1, "cpu_seconds": cost[schedule]}
            if schedule in ("reference", "proxy-seed1") and index < 8:
                row.pop("cpu_seconds")  # reference.py's rows: no CPU time, another machine
            rows.append(row)
    rows.append({**rows[-1], "schedule": "e1-f0.2", "model_index": 99})  # a model not in the list: ignored
    return models, rows


def test_the_summary_ranks_the_proxies_compares_the_spaces_and_chooses(tmp_path):
    models, rows = _synthetic_runs()
    rows[0] = {**rows[0], "status": "diverged", "val_error": None}  # one reference run failed: 39 models
    grid = [Proxy.parse(name) for name in ("e1-f0.05", "e1-f0.2", "e2-f0.2")]
    summary = cost_curve.write_summary(tmp_path, models, rows, grid, ("anynetx_a", "regnetx"))
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert (tmp_path / "cost_curve.png").stat().st_size > 10_000
    p = summary["proxies"]
    assert summary["models"] == 39 and p["e2-f0.2"]["n"] == 39 and p["e1-f0.2"]["ok"] == 40
    assert p["e2-f0.2"]["spearman"] > 0.95 > p["e1-f0.2"]["spearman"] > 0.6 > 0.3 > p["e1-f0.05"]["spearman"]
    for entry in p.values():
        low, high = entry["spearman_ci"]
        assert low < entry["spearman"] < high
    assert [p[k]["cpu_seconds"] for k in ("e1-f0.05", "e1-f0.2", "e2-f0.2")] == [5.0, 20.0, 40.0]
    assert summary["other_schedules"]["reference"] == pytest.approx(
        {"runs": 8, "cpu_seconds": 200.0, "wall_seconds": 220.0})
    assert p["e1-f0.2"]["current_default"] and not p["e2-f0.2"]["current_default"]
    # the space comparison: the good proxies reproduce "A worse than RegNetX", the noise proxy reverses it
    good, bad = p["e2-f0.2"]["space_comparison"], p["e1-f0.05"]["space_comparison"]
    assert good["reference_diff"] > 0 and good["same_order"] and good["p_one_sided"] < 0.05
    assert good["reference_p_one_sided"] < 0.05 and (good["n_a"], good["n_b"]) == (9, 10)
    assert not bad["same_order"] and bad["p_one_sided"] > 0.9
    # the noise ceiling is the study's proxy against its second seed; the choice follows the rule
    ceiling = summary["noise_ceiling"]
    assert ceiling["n"] == 40 and 0.6 < ceiling["spearman"] < 0.97
    # the study's own errors (the default proxy as the study ran it) against the reference, for before/after
    assert summary["study_proxy"]["n"] == 39 and -1 <= summary["study_proxy"]["spearman"] <= 1
    choice = summary["choice"]
    assert choice["best"] == "e2-f0.2" and choice["proxy"] == "e1-f0.2"
    assert "e1-f0.05" not in choice["qualified"]
    gap = p["e1-f0.2"]["spearman_gap_to_best"]
    assert gap["gap"] > 0 and gap["gap_ci"][0] > 0  # paired, the gap the side-by-side intervals miss is clear
    assert "spearman_gap_to_best" not in p["e2-f0.2"]


def test_the_summary_lists_proxies_without_enough_models_and_chooses_none(tmp_path):
    models, rows = _synthetic_runs(n_per_space=1)
    summary = cost_curve.write_summary(tmp_path, models, rows, [Proxy.parse("e1-f0.2")], ("anynetx_a", "regnetx"))
    assert summary["proxies"]["e1-f0.2"]["cpu_seconds"] == 20.0 and "spearman" not in summary["proxies"]["e1-f0.2"]
    assert summary["choice"]["proxy"] is None and summary["noise_ceiling"] is None and summary["study_proxy"] is None


def test_a_restart_skips_the_runs_already_recorded(tmp_path, capsys):
    args = ["--limit", "2", "--grid", "e1-f0.05,e1-f0.1", "--out", str(tmp_path), "--dry-run"]
    cost_curve.main(args)
    assert "4 runs, 4 to do" in capsys.readouterr().out
    models = cost_curve.chosen_models(pd.read_csv(ROOT / "analysis" / "progression_small" / "results.csv"), 8)
    first = models.iloc[0]
    cost_curve.append_run(tmp_path / "runs.jsonl", {"space": first["space"], "model_index": int(first["model_index"]),
                                                   "schedule": "e1-f0.1", "status": "ok", "val_error": 30.0,
                                                   "seconds": 1.0, "cpu_seconds": 1.0})
    cost_curve.main(args)
    out = capsys.readouterr().out
    assert "4 runs, 3 to do" in out and re.search(r"e1-f0.1 +2 runs, +1 to do", out)

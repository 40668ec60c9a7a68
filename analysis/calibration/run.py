"""Calibration of the EDF tests and of `refine`: rejection rates on null tables, recovery on planted ones.

    PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/calibration/run.py [--tables 1000] [--refine-tables 500]

Writes analysis/calibration/results.json (every rate with its binomial standard deviation). The tables come
from regnet_space.analysis.calibration (see its docstring for what each null and planted table is).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
from pathlib import Path

import numpy as np
from tqdm import tqdm

from regnet_space.analysis.calibration import (PLANTED, false_decisions, parameter_table, recovered, two_space_table,
                                               window_table)
from regnet_space.analysis.edf import compare
from regnet_space.analysis.refine import propose, refine
from regnet_space.spaces import load_space

ALPHA = 0.05


def rate(hits: int, total: int) -> dict:
    p = hits / total
    return {"rate": round(p, 4), "hits": int(hits), "tables": int(total),
            "binomial_sd": round(np.sqrt(p * (1 - p) / total), 4)}


def pooled_pvalue(frame, bins: int, permutations: int, rng) -> float:
    """The old, miscalibrated normalised test (labels shuffled across bins), for contrast only."""
    errors = frame["error"].to_numpy()
    order = np.argsort(errors, kind="stable")
    errors, binned = errors[order], np.minimum(frame["flops"].to_numpy()[order].astype(int), bins - 1)
    labels = (frame["space"].to_numpy()[order] == "a")
    observed = pooled_ks(errors, binned, labels[None, :], bins)[0]
    shuffled = rng.permuted(np.broadcast_to(labels, (permutations, len(labels))), axis=1)
    return (1 + np.sum(pooled_ks(errors, binned, shuffled, bins) >= observed - 1e-12)) / (1 + permutations)


def pooled_ks(errors: np.ndarray, bins: np.ndarray, labels: np.ndarray, num_bins: int) -> np.ndarray:
    """sup |F_a - F_b| of normalised EDFs for each row of ``labels`` (True = group a), errors ascending. A
    shuffle across bins changes each group's count per bin, so every row gets its own weights (the stratified
    test's ``edf_gaps`` holds them fixed)."""
    rows = np.arange(labels.shape[0])[:, None]
    last_of_tie = np.r_[errors[1:] != errors[:-1], True]
    cdfs = []
    for member in (labels, ~labels):
        counts = np.bincount((rows * num_bins + bins)[member], minlength=labels.shape[0] * num_bins)
        counts = counts.reshape(-1, num_bins)
        nonempty = np.count_nonzero(counts, axis=1)[:, None]
        weights = np.where(member, 1.0 / (nonempty * np.maximum(counts[rows, bins], 1)), 0.0)
        cdfs.append(np.cumsum(weights, axis=1)[:, last_of_tie])
    return np.abs(cdfs[0] - cdfs[1]).max(axis=1)


def edf_tests(tables: int, n: int, bins: int, permutations: int, seed: int) -> dict:
    plain_null = plain_cover = norm_null = norm_cover = plain_on_norm = pooled = steep_null = steep_pooled = 0
    for t in tqdm(range(tables), desc="EDF null tables", unit="table"):
        rng = np.random.default_rng([seed, t])
        same = compare(two_space_table(n, rng, mixes="same", bins=bins), ci_samples=1000, seed=t).ks[0]
        plain_null += same["pvalue"] <= ALPHA
        plain_cover += same["mean_diff_ci"][0] <= 0 <= same["mean_diff_ci"][1]
        frame = two_space_table(n, rng, mixes="across-bins", bins=bins)
        norm = compare(frame, normalize="flops", bins=bins, value_range=(0, bins), permutations=permutations,
                       ci_samples=1000, seed=t).ks[0]
        norm_null += norm["pvalue"] <= ALPHA
        norm_cover += norm["mean_diff_ci"][0] <= 0 <= norm["mean_diff_ci"][1]
        plain_on_norm += compare(frame, ci_samples=1).ks[0]["pvalue"] <= ALPHA
        pooled += pooled_pvalue(frame, bins, permutations, rng) <= ALPHA
        steep = two_space_table(n, rng, mixes="across-bins", bins=10, skew=8.0, slope=-0.5)
        steep_null += compare(steep, normalize="flops", bins=10, value_range=(0, 10), permutations=permutations,
                              ci_samples=1, seed=t).ks[0]["pvalue"] <= ALPHA
        steep_pooled += pooled_pvalue(steep, 10, permutations, rng) <= ALPHA
    setup = {"models_per_space": n, "bins": bins, "permutations": permutations, "alpha": ALPHA}
    return {
        "plain_ks_same_mix": {**rate(plain_null, tables), **setup,
                              "table": "both spaces draw flops from one distribution; error 25 - flops + N(0,1)"},
        "normalised_ks_mix_differs_across_bins": {
            **rate(norm_null, tables), **setup,
            "table": "space a puts 1..3 parts of its models in bins 1..5, b 3..1; uniform within bins; "
                     "error 25 - flops + N(0,1): the normalised EDFs are equal"},
        "normalised_ks_10_bins_mix_skew_8": {
            **rate(steep_null, tables), **setup, "bins": 10,
            "table": "as above with 10 bins, a's share rising 1..8 from the lowest bin to the highest and b's "
                     "falling 8..1, error 25 - 0.5 flops + N(0,1)"},
        "bootstrap_ci_covers_true_mean_diff_0": {"plain": rate(plain_cover, tables),
                                                 "normalised": rate(norm_cover, tables), "level": 0.95},
        "context_plain_ks_on_the_normalised_null_tables": rate(plain_on_norm, tables),
        "context_old_pooled_permutation_on_the_normalised_null_tables": rate(pooled, tables),
        "context_old_pooled_permutation_on_the_10_bin_null_tables": rate(steep_pooled, tables),
    }


def refine_noise(space_name: str, tables: int, n: int, permutations: int, seed: int) -> dict:
    space = load_space(space_name)
    any_taken = raw = candidates = 0
    by_kind: dict[str, list[int]] = {}
    for t in tqdm(range(tables), desc=f"refine on noise ({space_name})", unit="table"):
        decisions = propose(space, parameter_table(space, n, np.random.default_rng([seed, t])),
                            permutations=permutations, seed=t)
        any_taken += any(d.taken for d in decisions)
        raw += sum(d.p_value <= ALPHA for d in decisions)
        candidates += len(decisions)
        for d in decisions:
            where = "regnet" if space.is_regnet else "one stage" if d.column else "every stage"
            key = f"{'monotone' if d.kind == 'monotone' else 'narrow/share'} {d.field} ({where})"
            by_kind.setdefault(key, [0, 0])
            by_kind[key][0] += d.p_value <= ALPHA
            by_kind[key][1] += 1
    return {"space": space_name, "models": n, "permutations": permutations, "alpha": ALPHA,
            "candidates_per_table": candidates / tables,
            "family_wise_any_decision_taken": rate(any_taken, tables),
            "single_candidate_raw_p_le_alpha": {"rate": round(raw / candidates, 4), "p_values": candidates},
            "single_candidate_raw_p_le_alpha_by_field": {k: round(h / c, 4) for k, (h, c) in sorted(by_kind.items())}}


def refine_planted(tables: int, n: int, permutations: int, seed: int) -> dict:
    space = load_space("anynetx_a")
    found = []
    for t in tqdm(range(tables), desc=f"refine on planted tables (n={n})", unit="table"):
        table = parameter_table(space, n, np.random.default_rng([seed, 7, t]), planted=True)
        found.append(recovered(refine(space, table, permutations=permutations, seed=t).space))
    rates = {key: rate(sum(f[key] for f in found), tables) for key in found[0]}
    rates["all_three"] = rate(sum(f["b_1"] and f["g_4_16"] and f["width_monotone"] for f in found), tables)
    return {"space": "anynetx_a", "models": n, "permutations": permutations, "alpha": ALPHA,
            "planted_penalties": PLANTED, "noise_sd": 2.0, "recovery": rates}


def refine_window(space_name: str, effect: str, form: str, tables: int, n: int, permutations: int, seed: int
                  ) -> dict:
    """``refine.propose`` on models sampled in a flops window whose error depends on ``effect`` alone: how often
    it takes a decision about a field without effect (target <= 5%); on ``planted`` tables, how often it finds
    both planted constraints (non-decreasing widths and depths) and how often it takes anything else."""
    space = load_space(space_name)
    false = found = 0
    fields: dict[str, int] = {}
    for t in tqdm(range(tables), desc=f"refine {space_name} {form} error~{effect}", unit="table"):
        decisions = propose(space, window_table(space, n, seed * 100_000 + t, effect=effect, form=form),
                            permutations=permutations, seed=t)
        taken = [d for d in decisions if d.taken]
        if effect == "planted":
            found += {("monotone", "width"), ("monotone", "depth")} <= {(d.kind, d.field) for d in taken}
            wrong = [d for d in taken if d.kind != "monotone"]
        else:
            wrong = false_decisions(decisions, effect)
        false += bool(wrong)
        for d in wrong:
            fields[d.field] = fields.get(d.field, 0) + 1
    out = {"space": space_name, "form": form, "effect": effect, "models": n, "permutations": permutations,
           "alpha": ALPHA, "tables_with_a_decision_on_a_field_without_effect": rate(false, tables),
           "false_decisions_by_field": fields}
    if effect == "planted":
        out["both_planted_constraints_found"] = rate(found, tables)
    return out


def edf_skew(tables: int, permutations: int, seed: int) -> dict:
    """The normalised comparison at the default bins (``bins.choose_bins``) on null tables whose flops are
    skewed inside every bin (a high, b low; equal errors at equal flops), and its mean-difference interval's
    coverage of the true 0, at n = 100 and n = 1,000 models per space; for contrast, binning without the
    within-bin adjustment on the same tables."""
    from regnet_space.analysis.bootstrap import mean_difference_ci
    from regnet_space.analysis.edf import ks_test

    out = {}
    for n in (100, 1000):
        rejected = covered = unadjusted = unadjusted_covered = 0
        for t in tqdm(range(tables), desc=f"normalised KS, within-bin skew, n={n}", unit="table"):
            frame = two_space_table(n, np.random.default_rng([seed, 11, n, t]), mixes="across-bins", bins=5,
                                    within=3.0)
            test = compare(frame, normalize="flops", permutations=permutations, ci_samples=1000, seed=t)
            rejected += test.ks[0]["pvalue"] <= ALPHA
            covered += test.ks[0]["mean_diff_ci"][0] <= 0 <= test.ks[0]["mean_diff_ci"][1]
            binning = test.binning
            index = binning.assign(frame["flops"].to_numpy())
            inside = index >= 0
            a, errors, index = (frame["space"].to_numpy() == "a")[inside], frame["error"].to_numpy()[inside], index[inside]
            plain = ks_test(errors[a], errors[~a], index[a], index[~a], binning.bins, permutations=permutations,
                            seed=t)
            unadjusted += plain["pvalue"] <= ALPHA
            lo, hi = mean_difference_ci(errors[a], errors[~a], index[a], index[~a], binning.bins, samples=1000,
                                        seed=t)[1]
            unadjusted_covered += lo <= 0 <= hi
        out[f"n_{n}"] = {"normalised_ks_rejections": rate(rejected, tables),
                         "mean_diff_ci_covers_0": rate(covered, tables),
                         "context_unadjusted_bins_rejections": rate(unadjusted, tables),
                         "context_unadjusted_bins_ci_covers_0": rate(unadjusted_covered, tables)}
    return {"table": "space a's share rises 1..3 over 5 flops bins and b's falls 3..1; inside every bin a's flops "
                     "lean to the top (1 - U^4) and b's to the bottom (U^4); error 25 - flops + N(0, 1)",
            "bins": "default (choose_bins)", "permutations": permutations, "alpha": ALPHA, **out}


WINDOW_CONDITIONS = [("anynetx_a", "flops", "imagenet"), ("anynetx_a", "depth", "imagenet"),
                     ("anynetx_a", "flops", "small"), ("anynetx_a", "depth", "small"),
                     ("regnetx", "flops", "imagenet"), ("regnetx", "depth", "imagenet")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=1000, help="null tables per EDF test (default 1000)")
    parser.add_argument("--refine-tables", type=int, default=500, help="noise tables per space for refine")
    parser.add_argument("--planted-tables", type=int, default=200, help="planted tables per size")
    parser.add_argument("--window-tables", type=int, default=500, help="tables per window condition")
    parser.add_argument("--parts", nargs="+", default=["edf", "refine", "window"],
                        choices=["edf", "refine", "window", "skew"], help="which parts to run (the others keep their "
                        "results from the existing file)")
    parser.add_argument("--window-condition", action="append", metavar="SPACE:EFFECT:FORM",
                        help="with --parts window: run only this condition (repeatable; e.g. anynetx_a:flops:small) and "
                             "replace its entry in the file, the others kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.setdefault("runs", {})
    if "command" in results:  # a file from before the parts: its one run made the edf and refine parts
        results["runs"]["edf refine"] = {k: results.pop(k) for k in ("command", "commit", "python") if k in results}
    conditions = "".join(f" --window-condition {c}" for c in args.window_condition or [])
    results["runs"][" ".join(args.parts) + conditions] = {
        "command": "PYTHONPATH=. OMP_NUM_THREADS=1 python analysis/calibration/run.py "
                   f"--tables {args.tables} --refine-tables {args.refine_tables} --planted-tables "
                   f"{args.planted_tables} --window-tables {args.window_tables} --parts {' '.join(args.parts)}"
                   f"{conditions} --seed {args.seed}",
        "commit": subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                 text=True).stdout.strip(),
        "python": platform.python_version()}
    if "edf" in args.parts:
        results["edf"] = edf_tests(args.tables, n=100, bins=5, permutations=500, seed=args.seed)
    if "refine" in args.parts:
        results["refine_noise"] = [refine_noise("anynetx_a", args.refine_tables, 300, 1000, args.seed),
                                   refine_noise("regnet", args.refine_tables, 300, 1000, args.seed)]
        results["refine_planted"] = [refine_planted(args.planted_tables, n, 1000, args.seed) for n in (300, 500)]
    if "skew" in args.parts:
        results["edf_within_bin_skew"] = edf_skew(args.tables, 500, args.seed)
    if "window" in args.parts and args.window_condition:
        chosen = [tuple(c.split(":")) for c in args.window_condition]
        unknown = [c for c in chosen if c not in WINDOW_CONDITIONS]
        if unknown:
            parser.error(f"unknown window condition(s) {unknown}; known: {WINDOW_CONDITIONS}")
        fresh = {(s, e, f): refine_window(s, e, f, args.window_tables, 100, 1000, args.seed) for s, e, f in chosen}
        old = results.get("refine_window", [])
        present = {(r["space"], r["effect"], r["form"]) for r in old}
        results["refine_window"] = ([fresh.get((r["space"], r["effect"], r["form"]), r) for r in old]
                                    + [entry for key, entry in fresh.items() if key not in present])
    elif "window" in args.parts:
        results["refine_window"] = [refine_window(s, e, f, args.window_tables, 100, 1000, args.seed)
                                    for s, e, f in WINDOW_CONDITIONS]
        results["refine_window"].append(refine_window("anynetx_a", "planted", "imagenet",
                                                      max(1, args.window_tables // 5), 100, 1000, args.seed))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

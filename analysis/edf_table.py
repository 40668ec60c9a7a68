"""Markdown table of `regnet-space edf --json` outputs: n, min, mean error and KS against a reference group.

    python analysis/edf_table.py edf.json [edf_flops.json ...] --reference anynetx_a
"""

from __future__ import annotations

import argparse
import json


def ks_against(result: dict, reference: str, group: str) -> str:
    for pair in result["ks"]:
        if {pair["a"], pair["b"]} == {reference, group}:
            return f"{pair['statistic']:.3f} (p={pair['pvalue']:.3g})"
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("edf_json", nargs="+")
    parser.add_argument("--reference", required=True)
    args = parser.parse_args()
    results = [(path, json.load(open(path))) for path in args.edf_json]
    plain = results[0][1]
    header = ["space", "n", "min error %", "mean error %", f"KS vs {args.reference}"]
    header += [f"KS vs {args.reference} ({path.rsplit('_', 1)[-1].removesuffix('.json')}-normalised)"
               for path, _ in results[1:]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, group in plain["groups"].items():
        cells = [name, str(group["n"]), f"{group['min_error']:.2f}", f"{group['mean_error']:.2f}"]
        cells += [ks_against(result, args.reference, name) if name != args.reference else "-"
                  for _, result in results]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

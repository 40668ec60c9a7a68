#!/usr/bin/env bash
# Turn a finished study into the files committed under analysis/<study>/:
#   analysis/analyze_study.sh experiments/anynet_progression.toml runs/anynet_progression \
#       analysis/anynet_progression anynetx_a anynetx_e regnetx
# Arguments: the study spec, its --dir, the output folder, the reference space of the KS column, then the
# spaces to refine. LATENCY_ARGS (default "--bins 3") sets the bins/range of the latency-normalised EDF;
# LATENCY_ARGS=none skips it (a study with measure_latency = false). A pairwise table with Holm-adjusted p-values
# and each comparison's power goes to pairs.md.
set -euo pipefail
spec=$1 dir=$2 out=$3 reference=$4
shift 4
rs=${RS:-.venv/bin/regnet-space}
mkdir -p "$out"
$rs study status "$spec" --dir "$dir" > "$out/status.txt"
$rs study export "$spec" --dir "$dir" --out "$out/results.csv"
$rs edf "$spec" --dir "$dir" --plot "$out/edf.png" --json > "$out/edf.json"
$rs edf "$spec" --dir "$dir" --plot "$out/edf.svg" > /dev/null
$rs edf "$spec" --dir "$dir" --normalize flops --bins 5 --plot "$out/edf_flops.png" --json > "$out/edf_flops.json"
normalised=("$out/edf_flops.json")
if [[ ${LATENCY_ARGS:-} != none ]]; then
  $rs edf "$spec" --dir "$dir" --normalize latency ${LATENCY_ARGS:---bins 3} --plot "$out/edf_latency.png" \
    --json > "$out/edf_latency.json"
  normalised+=("$out/edf_latency.json")
fi
$rs best "$spec" --dir "$dir" --out "$out/best.json" > "$out/best.txt"
$rs report "$spec" --dir "$dir" --out "$out/report.html" 2> /dev/null
for space in "$@"; do
  $rs refine "$spec" --dir "$dir" --space "$space" --out "$out/refined_$space.toml" > /dev/null
done
python=$(dirname "$rs")/python
$python "$(dirname "$0")/edf_table.py" "$out/edf.json" "${normalised[@]}" --reference "$reference" > "$out/table.md"
$python "$(dirname "$0")/pair_table.py" "$out/results.csv" "$out/edf.json" "$out/edf_flops.json" > "$out/pairs.md"

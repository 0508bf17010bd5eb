#!/usr/bin/env bash
# The reference run on one GPU machine, in parts that fit a time-limited session:
#
#   benchmarks/reference_run.sh OUTDIR [more snakemake arguments]
#
# Runs the speed benchmark (once), then the workflow up to the per-dataset figures for the chosen
# datasets and seeds (training, localizers, evaluation), and packs everything that is published,
# without model weights, as OUTDIR/part-<datasets>-seeds<seeds>.tar.gz; benchmarks/reference_publish.sh
# turns the parts into reports/reference/<name>. Environment (defaults in brackets):
#   CELLBENCH_DATASETS ["VGG MBM ADI"]   CELLBENCH_SEEDS ["0 1 2"]
#   CELLBENCH_GPU_JOBS [2]    training or evaluation jobs that share the GPU at a time
#   CELLBENCH_SPEED [1]       run benchmarks/speed.py first (0: skip)
#   CELLBENCH_CONFIGFILES ["config/reference.yaml"]
#   SNAKEMAKE ["python -m snakemake"]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: benchmarks/reference_run.sh OUTDIR [snakemake arguments]}"
shift
read -r -a datasets <<< "${CELLBENCH_DATASETS:-VGG MBM ADI}"
read -r -a seeds <<< "${CELLBENCH_SEEDS:-0 1 2}"
read -r -a configfiles <<< "${CELLBENCH_CONFIGFILES:-config/reference.yaml}"
read -r -a snakemake <<< "${SNAKEMAKE:-python -m snakemake}"
mkdir -p "$out"

# The rules call `python`; some machines only have python3.
if ! command -v python >/dev/null; then
    mkdir -p /tmp/cellbench-bin && ln -sf "$(command -v python3)" /tmp/cellbench-bin/python
    export PATH="/tmp/cellbench-bin:$PATH"
fi

join() { local IFS=,; echo "$*"; }
tag="$(join "${datasets[@]}" | tr , -)-seeds$(join "${seeds[@]}" | tr -d ,)"
figures=()
for d in "${datasets[@]}"; do figures+=("reports/figures/examples_$d.png" "results/stats/$d.json"); done

start=$(date +%s)
if [ "${CELLBENCH_SPEED:-1}" = 1 ]; then
    "${snakemake[@]}" --cores all --configfile "${configfiles[@]}" results/prepared/VGG/patches.npz
    python benchmarks/speed.py --device cuda --out "$out/speed.json" 2>&1 | tee "$out/speed.log"
fi
"${snakemake[@]}" --cores all --resources gpu="${CELLBENCH_GPU_JOBS:-2}" --rerun-incomplete \
    --configfile "${configfiles[@]}" "$@" \
    --config "datasets=[$(join "${datasets[@]}")]" "seeds=[$(join "${seeds[@]}")]" -- "${figures[@]}" \
    2>&1 | tee "$out/snakemake-$tag.log"
wall=$(( $(date +%s) - start ))

# What publish reads, and nothing heavier: no weights, no prepared patches.
paths=()
for d in "${datasets[@]}"; do
    for s in "${seeds[@]}"; do paths+=(results/"$d"/*/seed"$s" results/splits/"$d"/seed"$s".json); done
    paths+=(results/stats/"$d".json reports/figures/*_"$d".*)
done
tar -czf "$out/part-$tag.tar.gz" --exclude='*.pt' --exclude='*.ckpt' "${paths[@]}"
echo "reference_run: $tag done in ${wall} s; packed $(du -h "$out/part-$tag.tar.gz" | cut -f1) into $out/part-$tag.tar.gz"

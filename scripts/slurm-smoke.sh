#!/usr/bin/env bash
# Run the smoke benchmark through SLURM (profiles/slurm, snakemake-executor-plugin-slurm) on a
# single-node cluster started on this machine, run the same locally, and check that the same
# outputs appear with the same numbers. Needs root (it starts slurmctld and slurmd).
#
#   bash scripts/slurm-smoke.sh [WORKDIR]
#
# Smoke settings on MBM with two methods (one with a localizer), to keep it to a few minutes.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
export CELLBENCH_DATA_MIRROR="${CELLBENCH_DATA_MIRROR:-$(cd "$repo/.." && pwd)/shared/datasets}"
bash "$repo/scripts/slurm-local.sh" start

for side in local slurm; do
    rm -rf "$work/$side"
    mkdir -p "$work/$side"
    tar -C "$repo" --exclude='./.venv*' --exclude=./.git --exclude=./.snakemake --exclude=./results \
        --exclude=./reports --exclude='*/__pycache__' -cf - . | tar -C "$work/$side" -xf -
done
settings=(--workflow-profile none --configfile config/smoke.yaml --config 'datasets=[MBM]' 'methods=[mcnn,dcl]')

echo "slurm-smoke: local run" >&2
(cd "$work/local" && snakemake --cores 2 "${settings[@]}")

echo "slurm-smoke: the same through SLURM" >&2
# The test node has 2 CPUs, no GPU (smoke runs on the CPU: the rules ask for gpu=0) and no
# accounting database (status from squeue).
(cd "$work/slurm" && snakemake --profile profiles/slurm "${settings[@]}" --slurm-no-account \
    --slurm-status-command squeue --slurm-keep-successful-logs --set-threads run=2 run_localized=2)

cd "$work"
submitted=$(find slurm/.snakemake/slurm_logs -name '*.log' | wc -l)
[ "$submitted" -gt 0 ] || { echo "slurm-smoke: no SLURM job logs: nothing went through SLURM" >&2; exit 1; }
missing=0
while read -r f; do
    [ -f "slurm/$f" ] || { echo "slurm-smoke: $f is missing from the SLURM run" >&2; missing=1; }
done < <(cd local && find results reports -type f ! -path 'results/logs/*' ! -name '*.pt' ! -name '*.png' ! -name '*.pdf' ! -name 'README.md' | sort)
[ "$missing" = 0 ]
python - "$work" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
for local in sorted((work / "local" / "results").glob("*/*/seed*/metrics.json")):
    remote = work / "slurm" / local.relative_to(work / "local")
    a, b = json.loads(local.read_text()), json.loads(remote.read_text())
    for key in ("mae", "rmse", "best_epoch"):
        if abs(a[key] - b[key]) > 1e-6 * max(1.0, abs(a[key])):
            sys.exit(f"slurm-smoke: {remote} {key} = {b[key]}, local run gave {a[key]}")
    print(f"slurm-smoke: {local.parent.relative_to(work / 'local')}: MAE {a['mae']:.4f} on both")
PY
echo "slurm-smoke: $submitted jobs went through SLURM; outputs and metrics match the local run"

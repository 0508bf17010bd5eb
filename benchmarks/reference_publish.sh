#!/usr/bin/env bash
# Turn the parts written by benchmarks/reference_run.sh into a published reference:
#
#   benchmarks/reference_publish.sh NAME PART.tar.gz [PART.tar.gz ...] [-- publish arguments]
#
# Unpacks the parts into one results tree (no weights are needed), builds the tables with the
# tables stage, and publishes them with `python -m cellbench publish` to reports/reference/NAME.
# CELLBENCH_CONFIGFILES: the overlays the run used [config/reference.yaml].
# Publish arguments: --note "..." (a line for the README), --extra FILE (the speed JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: benchmarks/reference_publish.sh NAME PART.tar.gz ... [-- publish arguments]}"
shift
parts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do parts+=("$(realpath "$1")"); shift; done
[ "${1:-}" = "--" ] && shift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for part in "${parts[@]}"; do tar -xzf "$part" -C "$work"; done
read -r -a configfiles <<< "${CELLBENCH_CONFIGFILES:-config/reference.yaml}"
python -m cellbench "${configfiles[@]/#/--configfile=}" \
    tables --results "$work/results" --out "$work/reports"
python -m cellbench publish --results "$work/results" --reports "$work/reports" \
    --out "reports/reference/$name" --title "cellbench reference results: $name" "$@"

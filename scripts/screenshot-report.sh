#!/usr/bin/env bash
# Open Snakemake's HTML report in headless Chromium, as a reader would, and save a screenshot.
#   bash scripts/screenshot-report.sh [reports/report.html] [reports/report.png]
# Needs Debian's chromium (apt-get install chromium). Builds the report first if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
html="${1:-reports/report.html}"
png="${2:-reports/report.png}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
    echo "screenshot-report: no chromium found; install it (apt-get install chromium)" >&2
    exit 2
fi
if [ ! -s "$html" ]; then
    snakemake --report "$html" "${@:3}"
fi
html="$(realpath -m "$html")"
png="$(realpath -m "$png")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1400,1000 --virtual-time-budget=10000 \
    --screenshot="$png" "file://$html" 2>/dev/null
test -s "$png"
echo "screenshot-report: $png ($(stat -c %s "$png") bytes)"

#!/usr/bin/env bash
# The data-efficiency study on the CPU track (config/cpu-efficiency.yaml) in parts, one repeat of
# every size at a time: part k runs the workflow's `data_efficiency` target with
# data_efficiency.repeats = k, so it adds repeat k-1 of every size (part 1 also the whole split's
# runs and the data) and leaves a table and figure of what has run so far. A part that is
# interrupted resumes where it stopped when run again (Snakemake; each run from its checkpoint).
#
#   bash benchmarks/data_efficiency_parts.sh [first part] [last part]   (default: 1 to 3, config/cpu-efficiency.yaml's repeats)
#
# Each part's start, end and wall time go to benchmarks/results/data_efficiency/parts.tsv (the times
# benchmarks/README.md, "Data efficiency", quotes); Snakemake's own output to the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
first="${1:-1}"
last="${2:-3}"
times=benchmarks/results/data_efficiency/parts.tsv
mkdir -p "$(dirname "$times")"
[ -s "$times" ] || printf 'part\trepeats\tstarted\tended\twall_s\tjobs_done\trc\thost_cpus\n' > "$times"
for part in $(seq "$first" "$last"); do
    started=$(date -u +%FT%TZ); tic=$(date +%s)
    log=$(mktemp)
    rc=0
    # --forcerun (the table job: seconds): Snakemake 9.27 plans nothing when an output of the table job
    # has no Snakemake metadata, even with that job's inputs missing; outputs added to the rule after
    # the last part ran have none (part 3 on 2026-12-07 first ran nothing). Forced, it builds its inputs.
    bash run.sh cpu-efficiency --config "data_efficiency={repeats: $part}" --forcerun data_efficiency \
        2>&1 | tee "$log" || rc=$?
    done_jobs=$(grep -c 'Finished job' "$log" || true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$part" "$part" "$started" "$(date -u +%FT%TZ)" \
        "$(( $(date +%s) - tic ))" "$done_jobs" "$rc" "$(nproc)" >> "$times"
    rm -f "$log"
    if [ "$rc" -ne 0 ]; then
        echo "data_efficiency_parts: part $part stopped (exit $rc); run the same command again to resume" >&2
        exit "$rc"
    fi
done

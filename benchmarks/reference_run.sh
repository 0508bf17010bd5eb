#!/usr/bin/env bash
# The reference run on one GPU machine, in parts ordered by value, inside the GPU time it has:
#
#   benchmarks/reference_run.sh OUTDIR [more snakemake arguments]
#
# Checks first (data mirror, every method of the plan builds, the modules the workflow imports),
# runs the speed benchmark once (its measured throughput sharpens the estimates), then each part of
# the plan in order: prints the part's estimated GPU time, skips it (and every later part) when it
# would not finish inside the budget, runs the workflow for it with --keep-going (a failed job does
# not stop the others), and packs what finished, without model weights, as
# OUTDIR/part-<datasets>-<methods>-seeds<seeds>.tar.gz, whether or not every job succeeded.
# benchmarks/reference_publish.sh turns the parts into reports/reference/<name>.
#
# Environment (defaults in brackets):
#   CELLBENCH_PLAN         parts, separated by ";", each "DATASETS | METHODS | SEEDS"; METHODS "rest": every
#                          method the config selects not named in an earlier part. [the ten-minute plan, below]
#   CELLBENCH_BUDGET_S [540]   seconds of the machine this script may use; a part starts only when its
#                              estimate (runs sharing the GPU) fits in what is left, and is stopped when
#                              the budget runs out, its finished runs packed
#   CELLBENCH_GPU_JOBS [2]     runs that share the GPU at a time
#   CELLBENCH_SPEED [1]        run benchmarks/speed.py first (0: skip)
#   CELLBENCH_SPEED_DEVICE [cuda]
#   CELLBENCH_CONFIGFILES ["config/reference.yaml"]
#   SNAKEMAKE ["python -m snakemake"]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: benchmarks/reference_run.sh OUTDIR [snakemake arguments]}"
shift
mkdir -p "$out"
out="$(cd "$out" && pwd)"
core="dcl dcl_no_gmp csrnet fcrn unet mcnn mean_count"
# The ten-minute plan (benchmarks/README.md): the methods the comparison is about, on seed 0 of each
# dataset (VGG first: the paper's best-known numbers), then the other seeds, then the other methods.
plan="${CELLBENCH_PLAN:-VGG | $core | 0; MBM | $core | 0; ADI | $core | 0; VGG MBM ADI | $core | 1 2; VGG MBM ADI | rest | 0 1 2}"
budget="${CELLBENCH_BUDGET_S:-540}"
jobs="${CELLBENCH_GPU_JOBS:-2}"
read -r -a configfiles <<< "${CELLBENCH_CONFIGFILES:-config/reference.yaml}"
read -r -a snakemake <<< "${SNAKEMAKE:-python -m snakemake}"
# cellbench may be used from this checkout without being installed (the GPU machine has only wheels).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# The rules call `python`; some machines only have python3.
if ! command -v python >/dev/null; then
    mkdir -p /tmp/cellbench-bin && ln -sf "$(command -v python3)" /tmp/cellbench-bin/python
    export PATH="/tmp/cellbench-bin:$PATH"
fi
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
say() { echo "reference_run [$(elapsed) s]: $*" | tee -a "$out/plan.log"; }
join() { local IFS=,; echo "$*"; }
cellbench() { python -m cellbench "${configfiles[@]/#/--configfile=}" "$@"; }

# Parse the plan into parts; "rest" becomes every method the config selects not named before it.
if ! all_methods=$(cellbench methods --selected 2> "$out/methods.err" | tr '\n' ' ') || [ -z "$all_methods" ]; then
    cat "$out/methods.err" | tee -a "$out/plan.log"
    say "stopped before starting: the configuration's methods could not be listed"
    exit 2
fi
parts=(); named=""
IFS=';' read -r -a raw_parts <<< "$plan"
for raw in "${raw_parts[@]}"; do
    IFS='|' read -r p_datasets p_methods p_seeds <<< "$raw"
    p_datasets=$(echo $p_datasets); p_methods=$(echo $p_methods); p_seeds=$(echo $p_seeds)
    if [ "$p_methods" = rest ]; then
        p_methods=""
        for m in $all_methods; do [[ " $named " == *" $m "* ]] || p_methods+="$m "; done
        p_methods=$(echo $p_methods)
    fi
    named+=" $p_methods"
    [ -n "$p_methods" ] && parts+=("$p_datasets|$p_methods|$p_seeds")
done

overlay() {  # the part's config overlay: datasets, methods, seeds
    local file="$out/part-$4.yaml"
    printf 'datasets: [%s]\nmethods: [%s]\nseeds: [%s]\ndataset_seeds: {}\nexclude_methods: []\n' \
        "$(join $1)" "$(join $2)" "$(join $3)" > "$file"
    echo "$file"
}

# 1. Everything checked before any GPU time is spent: every dataset and method of the plan at once.
say "checking the plan (${#parts[@]} parts)"
plan_datasets=""; plan_methods=""; plan_seeds=""
for part in "${parts[@]}"; do
    IFS='|' read -r d m s <<< "$part"
    plan_datasets+=" $d"; plan_methods+=" $m"; plan_seeds+=" $s"
done
uniq_words() { echo $* | tr ' ' '\n' | awk '!seen[$0]++' | tr '\n' ' '; }
file=$(overlay "$(uniq_words $plan_datasets)" "$(uniq_words $plan_methods)" "$(uniq_words $plan_seeds)" all)
if ! cellbench --configfile="$file" preflight --kit --no-estimate 2>&1 | tee -a "$out/plan.log"; then
    say "stopped before starting: fix the problems above"
    exit 2
fi

# 2. The speed benchmark: its measured epoch replaces the assumed throughput in the estimates.
speed=""
if [ "${CELLBENCH_SPEED:-1}" = 1 ]; then
    timeout 120 "${snakemake[@]}" results/prepared/VGG/patches.npz --cores all --configfile "${configfiles[@]}" \
        > "$out/snakemake-prepare.log" 2>&1
    if timeout 150 python benchmarks/speed.py --device "${CELLBENCH_SPEED_DEVICE:-cuda}" --out "$out/speed.json" \
        > "$out/speed.log" 2>&1; then
        speed="$out/speed.json"; say "speed: $(grep -m1 'trainer on' "$out/speed.log")"
    else
        say "speed.py failed (see speed.log); estimating with the assumed throughput"
    fi
fi

# 3. The parts, most valuable first, each packed as soon as it ends.
failed=0
for part in "${parts[@]}"; do
    IFS='|' read -r d m s <<< "$part"
    tag="$(echo $d | tr ' ' -)-$(echo $m | tr ' ' -)-seeds$(echo $s | tr -d ' ')"
    file=$(overlay "$d" "$m" "$s" "$tag")
    estimate=$(cellbench --configfile="$file" preflight --kit --no-check --jobs "$jobs" ${speed:+--speed "$speed"})
    seconds=$(echo "$estimate" | sed -n 's/^seconds=//p')
    shared=$(echo "$estimate" | sed -n 's/^seconds_shared=//p')
    if ! [[ "$shared" =~ ^[0-9]+$ ]]; then
        say "part $tag: no estimate (preflight failed: $(echo "$estimate" | tail -1)); this part and the later ones are left"
        failed=1
        break
    fi
    left=$(( budget - $(elapsed) - 30 ))   # 30 s to stop the jobs and pack
    say "part $tag: $(echo "$estimate" | head -1); $left s left"
    if [ "$shared" -gt "$left" ]; then
        say "part $tag and the parts after it do not fit: left for the next GPU session"
        break
    fi
    targets=()
    for ds in $d; do targets+=("reports/figures/examples_$ds.png" "results/stats/$ds.json"); done
    part_start=$(elapsed)
    # Stopped (SIGINT: Snakemake ends its jobs and keeps what finished) when the budget runs out, so
    # that the runs that did finish are packed and come back.
    timeout --signal=INT --kill-after=20 "$left" "${snakemake[@]}" "${targets[@]}" --cores all --resources gpu="$jobs" --rerun-incomplete --keep-going \
        --configfile "${configfiles[@]}" "$file" "$@" > "$out/snakemake-$tag.log" 2>&1
    status=$?
    [ $status -ne 0 ] && failed=1
    # What publish reads, and nothing heavier: no weights, no prepared patches.
    paths=()
    for ds in $d; do
        for seed in $s; do
            for method in $m; do
                [ -d "results/$ds/$method/seed$seed" ] && paths+=("results/$ds/$method/seed$seed")
            done
            [ -f "results/splits/$ds/seed$seed.json" ] && paths+=("results/splits/$ds/seed$seed.json")
        done
        [ -f "results/stats/$ds.json" ] && paths+=("results/stats/$ds.json")
        for f in reports/figures/*_"$ds".*; do [ -f "$f" ] && paths+=("$f"); done
    done
    if [ ${#paths[@]} -eq 0 ]; then
        say "part $tag: snakemake exit $status after $(( $(elapsed) - part_start )) s; nothing finished to pack"
        continue
    fi
    tar -czf "$out/part-$tag.tar.gz" --exclude='*.pt' --exclude='*.ckpt' "${paths[@]}"
    say "part $tag: snakemake exit $status after $(( $(elapsed) - part_start )) s (estimated $shared to $seconds s);" \
        "packed $(du -h "$out/part-$tag.tar.gz" | cut -f1) into part-$tag.tar.gz"
done
say "done in $(elapsed) s$([ $failed = 1 ] && echo '; some jobs failed: see the snakemake-*.log files')"
exit $failed

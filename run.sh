#!/usr/bin/env bash
# cellbench's entry point on a fresh machine (only Python 3.10+ needed): creates .venv on first
# use, installs cellbench and its dependencies into it, then runs what is asked.
#
#   bash run.sh cpu   [snakemake args]   the CPU track on VGG: every method trained to the end on the CPU
#                                        (profiles/cpu with config/cpu-vgg.yaml; about half an hour on 2 cores)
#   bash run.sh cpu-all [snakemake args] the whole CPU track: VGG (3 seeds), MBM, ADI (1 seed)
#   bash run.sh cpu-efficiency [args]    the data-efficiency study on the CPU track (config/cpu-efficiency.yaml):
#                                        MAE against training images, VGG and MBM; hours on 2 cores, one run at a time
#   bash run.sh smoke [snakemake args]   the benchmark's smoke profile: real data, CPU, minutes
#   bash run.sh full  [snakemake args]   the full benchmark (profiles/default; a GPU is expected:
#                                        without one it stops with the estimated CPU time, unless
#                                        CELLBENCH_ALLOW_CPU=1 or train.device: cpu is set)
#   bash run.sh test  [pytest args]      the test suite
#   bash run.sh report [smoke|cpu|cpu-all|cpu-efficiency|full]   Snakemake's HTML report
#                                        (reports/report.html) of that run, the last one made (default: smoke)
#   bash run.sh snakemake|python|cellbench [args]   that command inside the environment
#
# CELLBENCH_VENV chooses the environment folder; CELLBENCH_TORCH overrides the torch pin
# (for example "torch torchvision" to take what pip finds for your CUDA).
set -euo pipefail
cd "$(dirname "$0")"
venv="${CELLBENCH_VENV:-.venv}"
torch_spec="${CELLBENCH_TORCH:-torch==2.14.1 torchvision==0.29.1}"
stamp="$venv/.cellbench-installed"
want="$(cat pyproject.toml; echo "$torch_spec")"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "run.sh: installing into $venv (first run takes a few minutes)" >&2
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install --quiet $torch_spec
    "$venv/bin/python" -m pip install --quiet -e ".[test]"
    printf '%s' "$want" > "$stamp"
fi

# The workflow's jobs call `python -m cellbench`: they must find this environment's python.
export PATH="$(cd "$venv" && pwd)/bin:$PATH"
command="${1:-smoke}"
shift || true
case "$command" in
    cpu)   exec snakemake --workflow-profile profiles/cpu --configfile config/cpu.yaml config/cpu-vgg.yaml "$@" ;;
    cpu-all) exec snakemake --workflow-profile profiles/cpu "$@" ;;
    # One run at a time on both cores, as the CPU track (two one-thread runs at a time gave about
    # 1.1x the runs per hour, and other numbers): benchmarks/README.md, "Data efficiency".
    cpu-efficiency) exec snakemake data_efficiency --workflow-profile profiles/cpu \
                        --configfile config/cpu.yaml config/cpu-efficiency.yaml "$@" ;;
    smoke) exec snakemake --workflow-profile profiles/smoke "$@" ;;
    full)  python -m cellbench preflight && exec snakemake --cores all "$@" ;;
    test)  exec python -m pytest "$@" ;;
    report)
        # The report lists the outputs of the profile's targets: the smoke profile's (three
        # datasets, one seed) are not the full one's (four datasets, three seeds).
        which="${1:-smoke}"
        shift || true
        case "$which" in
            smoke) exec snakemake --workflow-profile profiles/smoke --report reports/report.html "$@" ;;
            cpu)   exec snakemake --workflow-profile profiles/cpu --configfile config/cpu.yaml config/cpu-vgg.yaml \
                       --report reports/report.html "$@" ;;
            cpu-all) exec snakemake --workflow-profile profiles/cpu --report reports/report.html "$@" ;;
            cpu-efficiency) exec snakemake data_efficiency --workflow-profile profiles/cpu \
                       --configfile config/cpu.yaml config/cpu-efficiency.yaml --report reports/report.html "$@" ;;
            full)  exec snakemake --report reports/report.html "$@" ;;
            *) echo "run.sh: report of 'smoke', 'cpu', 'cpu-all', 'cpu-efficiency' or 'full', not '$which'" >&2; exit 2 ;;
        esac ;;
    snakemake) exec snakemake "$@" ;;
    python)    exec python "$@" ;;
    cellbench) exec python -m cellbench "$@" ;;
    *) echo "run.sh: unknown command '$command' (cpu, cpu-all, cpu-efficiency, smoke, full, test, report, snakemake, python or cellbench)" >&2; exit 2 ;;
esac

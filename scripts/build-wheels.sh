#!/usr/bin/env bash
# The wheels the GPU machine needs beyond what it has (torch, torchvision, numpy, scipy, pandas,
# matplotlib, pillow, PyYAML are there; Snakemake, jsonschema, timm and scikit-image are not), for its Python:
#
#   bash scripts/build-wheels.sh [OUTDIR] [PYTHON_VERSION]      (defaults: .whl, 3.12)
#
# Resolves Snakemake, jsonschema, timm and scikit-image (the versions installed here) with their dependencies for
# CPython PYTHON_VERSION on manylinux x86_64, builds the one dependency published without a wheel,
# and drops what the machine already has. There, before anything else:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site OUTDIR/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.whl}"
py="${2:-3.12}"
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] && python=.venv/bin/python
version() { "$python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
mkdir -p "$out"
rm -f "$out"/*.whl
platforms=()
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64 \
         manylinux_2_34_x86_64 manylinux1_x86_64 any; do platforms+=(--platform "$p"); done
# connection_pool (a Snakemake dependency) is published as a source archive only.
"$python" -m pip wheel --quiet --no-deps -w "$out" "connection_pool==$(version connection_pool)"
"$python" -m pip download --quiet --only-binary=:all: --python-version "$py" --implementation cp \
    "${platforms[@]}" --find-links "$out" -d "$out" \
    "snakemake==$(version snakemake)" "jsonschema==$(version jsonschema)" "timm==$(version timm)" \
    "scikit-image==$(version scikit-image)"
# Already on the GPU machine (benchmarks/README.md), or not needed: PuLP is 16 MB of solvers, and
# Snakemake falls back to its greedy scheduler without it.
for name in numpy pandas scipy matplotlib pillow PyYAML pyyaml torch torchvision pulp PuLP; do
    rm -f "$out/$name"-[0-9]*.whl
done
echo "build-wheels: $(ls "$out"/*.whl | wc -l) wheels, $(du -sh "$out" | cut -f1) in $out for CPython $py"

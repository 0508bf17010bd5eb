"""Editing a method reruns its jobs (and only its jobs): a method's .py and .yaml files are inputs
of its run rule (run or run_localized) (workflow/rules/common.smk, method_sources).

Snakemake dry runs (`-n`, about 5 s each) in a copy of the repository whose results/ holds
empty stand-ins for a finished run of two methods; no job is run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from cellbench import REPO_ROOT

from test_workflow import COPY_IGNORE, SNAKEMAKE, _env

TARGETS = ["results/MBM/mcnn/seed0/metrics.json", "results/MBM/fcrn/seed0/metrics.json"]
CONFIG = ["--config", "datasets=[MBM]", "methods=[mcnn,fcrn]", "seeds=[0]"]


def _dry_run(root) -> str:
    result = subprocess.run([*SNAKEMAKE, "-n", *TARGETS, *CONFIG], cwd=root, env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def _jobs(text: str) -> dict[str, list[str]]:
    """rule -> the run folders (or datasets) of the jobs a dry run would start."""
    jobs: dict[str, list[str]] = {}
    for rule, body in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, flags=re.M | re.S):
        wildcards = re.search(r"wildcards: (.*)", body)
        jobs.setdefault(rule, []).append(wildcards[1] if wildcards else "")
    return jobs


def test_editing_a_method_reruns_its_jobs_only(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, root, ignore=COPY_IGNORE)
    # A finished run: every output the targets need, all written at the same time after the sources.
    outputs = re.findall(r"^    output: (.*)$", _dry_run(root), flags=re.M)
    done = time.time()
    for line in outputs:
        for name in line.split(", "):
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (done, done))
    assert "Nothing to be done" in _dry_run(root)

    model = root / "methods" / "mcnn" / "model.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    os.utime(model, (done + 10, done + 10))
    text = _dry_run(root)
    jobs = _jobs(text)
    assert set(jobs) == {"run"}, text[-3000:]
    assert all("method=mcnn" in w for w in jobs["run"]), jobs  # fcrn is left alone
    assert "Updated input files: methods/mcnn/model.py" in text

    definition = root / "methods" / "fcrn" / "method.yaml"
    definition.write_text(definition.read_text() + "\n# an edit\n")
    os.utime(definition, (done + 10, done + 10))
    jobs = _jobs(_dry_run(root))
    # The subset wildcard is empty for a run on the whole split (the data-efficiency study's runs fill it).
    assert sorted(jobs["run"]) == ["dataset=MBM, method=fcrn, seed=0, subset=", "dataset=MBM, method=mcnn, seed=0, subset="]

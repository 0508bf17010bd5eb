"""environment.yml (the conda environment at the repository root) and pyproject.toml name the same
packages with the same version bounds, so that a conda user and a pip user get the same cellbench."""

from __future__ import annotations

import re
import tomllib

import yaml

from cellbench import REPO_ROOT

#: conda-forge's name of a PyPI package, where they differ.
CONDA_NAMES = {"snakemake": "snakemake-minimal"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$")


def _parse(requirements) -> dict[str, str]:
    out = {}
    for requirement in requirements:
        name, spec = REQUIREMENT.match(requirement).group(1, 2)
        out[name.lower()] = spec.replace(" ", "")
    return out


def test_environment_yml_names_every_dependency_of_pyproject_with_the_same_bounds():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pip_side = _parse(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip += [e for e in entry["pip"] if not e.startswith("-e")]
        elif entry not in ("pip",) and not entry.startswith("python="):
            conda.append(entry)
    env_side = _parse(conda + pip)
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in pip_side.items()}
    assert env_side == expected
    assert any(isinstance(e, dict) and "-e ." in e["pip"] for e in env["dependencies"])   # cellbench itself


def test_the_workflow_rules_use_that_environment():
    common = (REPO_ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert 'CONDA_ENV = "../../environment.yml"' in common
    assert not (REPO_ROOT / "workflow" / "envs").exists()   # one environment file, not two

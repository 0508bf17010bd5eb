"""A bad config value is refused, naming the key."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from cellbench import REPO_ROOT
from cellbench.config import load_config, validate
from cellbench.errors import ConfigError


@pytest.fixture(scope="module")
def config():
    return load_config()


def _with(config, path, value):
    bad = copy.deepcopy(config)
    *parents, key = path
    node = bad
    for p in parents:
        node = node[p]
    node[key] = value
    return bad


@pytest.mark.parametrize("path,value,message", [
    (("train", "lr"), -1e-4, r"train\.lr: -0\.0001 is less than or equal to the minimum of 0"),
    (("train", "epochs"), 0, r"train\.epochs: 0 is less than the minimum of 1"),
    (("train", "device"), "gpu", r"train\.device: 'gpu' does not match"),
    (("split", "val"), 0.2, r"split: train \+ test \+ val must add up to 1, got 0\.5 \+ 0\.45 \+ 0\.2 = 1\.15"),
    (("train", "learning_rate"), 0.1, r"train: Additional properties are not allowed \('learning_rate' was unexpected\)"),
    (("methods",), ["dcl", "unet9000"], r"methods: unknown method 'unet9000'"),
    (("datasets",), ["VGG", "MNIST"], r"datasets: unknown dataset 'MNIST'"),
    (("seeds",), [], r"seeds: \[\] should be non-empty"),
])
def test_bad_values_are_refused_by_key(config, path, value, message):
    with pytest.raises(ConfigError, match=message):
        validate(_with(config, path, value))


def test_the_shipped_configs_are_valid():
    load_config()
    load_config(REPO_ROOT / "config" / "smoke.yaml")


def test_snakemake_refuses_a_bad_config_naming_the_key(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("train:\n  lr: -0.1\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(overlay)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "lr" in result.stderr + result.stdout and "minimum" in result.stderr + result.stdout

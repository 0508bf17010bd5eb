"""A bad config value is refused, naming the key."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import pytest

from cellbench import REPO_ROOT
from cellbench.config import coerce_command_line_strings, load_config, validate
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
    load_config(REPO_ROOT / "config" / "reference.yaml")


def test_command_line_strings_become_numbers_only_where_the_schema_wants_numbers(config):
    # what `snakemake --config seeds=[0,1] 'train={epochs: 5, crop_size: null, device: cpu}'` hands over
    given = {**config, "seeds": ["0", "1"], "datasets": ["VGG"],
             "train": {**config["train"], "epochs": "5", "crop_size": "null", "device": "cpu", "lr": "1e-3"}}
    coerced = coerce_command_line_strings(given)
    assert coerced["seeds"] == [0, 1] and coerced["datasets"] == ["VGG"]
    assert coerced["train"]["epochs"] == 5 and coerced["train"]["crop_size"] is None
    assert coerced["train"]["device"] == "cpu" and coerced["train"]["lr"] == pytest.approx(1e-3)
    validate(coerced)
    with pytest.raises(ConfigError, match="seeds.0"):
        validate(coerce_command_line_strings({**config, "seeds": ["one"]}))


def test_snakemake_takes_numbers_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", "seeds=[0,1]",
                             "datasets=[MBM]"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "results/splits/MBM/seed1.json" in result.stdout


def test_snakemake_refuses_a_bad_config_naming_the_key(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("train:\n  lr: -0.1\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(overlay)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "lr" in result.stderr + result.stdout and "minimum" in result.stderr + result.stdout


def test_key_tables_in_the_readmes_match_the_schemas():
    from cellbench.docs import update_docs
    assert update_docs(check=True) == [], "run: python -m cellbench docs"


def test_a_python_without_the_dependencies_gets_one_line_not_a_traceback():
    """`python -m cellbench methods` with a Python that lacks torch and pandas (the system's, here
    imitated with -S: no site-packages) says to activate .venv or to use run.sh (issue 15)."""
    done = subprocess.run([sys.executable, "-S", "-m", "cellbench", "methods"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "source .venv/bin/activate" in done.stderr and "bash run.sh" in done.stderr


def test_the_full_profile_without_a_gpu_stops_with_the_estimated_time(config, monkeypatch):
    from cellbench.preflight import ALLOW_CPU_ENV, preflight

    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    message = preflight(config, cuda_available=False)
    assert message and "would train on the CPU" in message
    assert " days" in message and "bash run.sh smoke" in message and f"{ALLOW_CPU_ENV}=1 bash run.sh full" in message
    assert preflight(config, cuda_available=True) is None
    assert preflight(_with(config, ("train", "device"), "cpu"), cuda_available=False) is None  # asked for
    monkeypatch.setenv(ALLOW_CPU_ENV, "1")
    assert preflight(config, cuda_available=False) is None
    # run.sh full calls it before Snakemake
    assert "python -m cellbench preflight && exec snakemake" in (REPO_ROOT / "run.sh").read_text()


def test_dataset_seeds_of_datasets_not_selected_are_ignored(config):
    """An overlay written for other datasets (config/cpu-vgg.yaml's VGG seeds) works for a dataset of
    your own: its entries for datasets not selected are dropped, not refused."""
    checked = validate({**config, "datasets": ["MBM"], "dataset_seeds": {"VGG": [0, 1, 2]}})
    assert checked["dataset_seeds"] == {}


def test_a_dataset_without_files_or_cell_knowledge_is_refused_before_any_job(config, tmp_path, monkeypatch):
    """The workflow's start checks every selected dataset: a definition without `cells` (what the
    stages need to know of its cells: once a bare KeyError after training) and one whose files are
    nowhere are refused at once, naming the file and what is wrong, and so is `snakemake -n`."""
    from cellbench.config import check_datasets
    from cellbench.data import registry

    root = tmp_path / "datasets"
    shutil.copytree(REPO_ROOT / "datasets", root)
    (root / "MINE").mkdir()
    (root / "MINE" / "dataset.yaml").write_text("name: MINE\ntitle: mine\nfolder: mine\nreader: points\npreprocess: []\n")
    (root / "ELSEWHERE").mkdir()
    (root / "ELSEWHERE" / "dataset.yaml").write_text(
        "name: ELSEWHERE\ntitle: x\nfolder: x\nreader: points\npreprocess: []\ncells: {spacing: 9, sigma: 2}\n")
    monkeypatch.setattr(registry, "datasets_dir", lambda: root)
    with pytest.raises(ConfigError) as refused:
        check_datasets({**config, "datasets": ["VGG", "MINE", "ELSEWHERE"]})
    text = str(refused.value)
    assert "MINE/dataset.yaml: invalid" in text and "'cells' is a required property" in text
    assert "ELSEWHERE/dataset.yaml: no files" in text and "no urls to download from" in text
    assert "VGG" not in text   # the good one passes
    work = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, work, ignore=shutil.ignore_patterns(".venv*", ".git", ".snakemake", "results",
                                                                   "reports", "models", "benchmarks"))
    shutil.copytree(root / "MINE", work / "datasets" / "MINE")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--workflow-profile", "profiles/smoke",
                             "--config", "datasets=[MBM,MINE]"], cwd=work, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "'cells' is a required property" in result.stdout + result.stderr


def test_the_full_protocol_on_a_cpu_is_refused_when_the_workflow_starts(tmp_path, monkeypatch):
    """Giving only --configfile my.yaml (no CPU profile) planned 300 epochs at full width on a CPU
    without a word: the workflow's start now stops with the estimate (a dry run still plans)."""
    from cellbench.preflight import ALLOW_CPU_ENV
    env = {k: v for k, v in __import__("os").environ.items() if k != ALLOW_CPU_ENV}
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("datasets: [MBM]\nseeds: [0]\n")
    work = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, work, ignore=shutil.ignore_patterns(".venv*", ".git", ".snakemake", "results",
                                                                   "reports", "models", "benchmarks"))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(overlay)],
                         cwd=work, capture_output=True, text=True, timeout=300, env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    real = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(overlay)],
                          cwd=work, capture_output=True, text=True, timeout=300, env=env)
    out = real.stdout + real.stderr
    assert real.returncode != 0 and "would train on the CPU" in out and f"{ALLOW_CPU_ENV}=1" in out
    assert not (work / "results" / "raw").exists()   # nothing ran: not even the fetch


def test_validate_checks_the_datasets_and_the_machine_too(monkeypatch, capsys):
    """`python -m cellbench validate` says before a long run what the workflow's start would refuse:
    the CPU track passes; the full protocol on a machine without a GPU does not."""
    from cellbench.cli import main
    from cellbench.preflight import ALLOW_CPU_ENV
    monkeypatch.delenv(ALLOW_CPU_ENV, raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert main(["--configfile", str(REPO_ROOT / "config" / "cpu.yaml"), "validate", "--method", "mean_count"]) == 0
    assert "datasets ok: VGG, MBM, ADI" in capsys.readouterr().out
    assert main(["validate", "--method", "mean_count"]) == 2
    assert "would train on the CPU" in capsys.readouterr().err

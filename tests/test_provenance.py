"""A run records which method ran: its folder's hash and whether git holds it as it ran."""

from __future__ import annotations

import subprocess

from cellbench.provenance import method_files
from cellbench.stages.train import _with_method_state


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_an_untracked_or_edited_method_folder_is_recorded_as_dirty(tmp_path):
    repo = tmp_path / "repo"
    method = repo / "methods" / "mine"
    method.mkdir(parents=True)
    (method / "method.yaml").write_text("model: model.py:Net\n")
    (method / "model.py").write_text("x = 1\n")
    assert method_files(method)["git"] == "unknown"   # not a git checkout

    _git(repo, "init", "-q")
    (repo / "README").write_text("r")
    _git(repo, "add", "README")
    _git(repo, "commit", "-qm", "first")
    untracked = method_files(method)
    assert untracked["git"] == "untracked" and untracked["files"] == ["method.yaml", "model.py"]
    env = _with_method_state({"git": {"commit": "abc", "dirty": False}}, untracked)
    assert env["git"] == {"commit": "abc", "dirty": True, "method_files": "untracked"}

    _git(repo, "add", "methods")
    _git(repo, "commit", "-qm", "method")
    clean = method_files(method)
    assert clean["git"] == "clean" and clean["sha256"] == untracked["sha256"]
    assert _with_method_state({"git": {"commit": "abc", "dirty": False}}, clean)["git"]["dirty"] is False

    (method / "model.py").write_text("x = 2\n")
    edited = method_files(method)
    assert edited["git"] == "modified" and edited["sha256"] != clean["sha256"]

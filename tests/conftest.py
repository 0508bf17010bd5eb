"""Shared fixtures: the real data mirror (../shared/datasets) and prepared datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cellbench import REPO_ROOT

MIRROR = Path(os.environ.get("CELLBENCH_DATA_MIRROR", REPO_ROOT.parent / "shared" / "datasets")).resolve()

# Measured on the mirror and written in its README (std divides by n).
EXPECTED = {"VGG": (200, 175.96, 61.24), "MBM": (44, 126.20, 33.13), "ADI": (200, 155.085, 35.86)}


@pytest.fixture(scope="session")
def mirror() -> Path:
    if not (MIRROR / "cells").is_dir():
        pytest.fail(f"the dataset mirror {MIRROR} is missing: put ../shared/datasets beside the repository "
                    f"or set CELLBENCH_DATA_MIRROR")
    return MIRROR


@pytest.fixture(scope="session")
def prepared(mirror):
    """name -> PreparedDataset for VGG, MBM and ADI, prepared once per test session."""
    from cellbench.data.prepare import prepare
    from cellbench.data.readers import get_reader
    from cellbench.data.registry import load_dataset

    out = {}
    for name in EXPECTED:
        spec = load_dataset(name)
        out[name] = prepare(get_reader(spec.reader)(mirror / spec.folder), spec.preprocess)
    return out


@pytest.fixture(scope="session")
def mbm_prepared(prepared):
    return prepared["MBM"]


@pytest.fixture
def mbm_small(prepared):
    """8 MBM training images (32 patches) and 2 validation images."""
    data = prepared["MBM"]
    ids = data.image_ids.tolist()
    return data.subset(ids[:8]), data.subset(ids[8:10])


def adam_losses(model, loss_fn, batch, steps: int, lr: float) -> list[float]:
    """The loss before each of ``steps`` Adam steps on one fixed batch."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(batch.images), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


#: A one-layer model file for a method folder made by a test.
CONV_MODEL = ("import torch\nclass {name}(torch.nn.Conv2d):\n"
              "    def __init__(self):\n        super().__init__(3, 1, 1)\n")


@pytest.fixture
def method_folder(tmp_path, monkeypatch):
    """make(name, method_yaml, model_class="Net"): a method folder in a scratch methods/ that the
    registry reads instead of the repository's; the model file holds a 1x1 convolution class."""
    from cellbench.methods import registry

    root = tmp_path / "methods"
    monkeypatch.setattr(registry, "methods_dir", lambda: root)

    def make(name: str, method_yaml: str, model_class: str = "Net") -> Path:
        (root / name).mkdir(parents=True)
        (root / name / "method.yaml").write_text(method_yaml)
        (root / name / "model.py").write_text(CONV_MODEL.format(name=model_class))
        return root / name
    return make

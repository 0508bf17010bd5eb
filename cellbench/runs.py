"""A run's folder, ``results/<dataset>/<method>/seed<k>/`` (``seed<k>-n<size>-r<repeat>/`` for a run
on a training subset, see ``data.splits``): its layout, and saving and loading what the stages
write there.

The workflow's rules, the stages and the report all find a run's files through this module.
Weights are loaded with ``torch.load(..., weights_only=True)``: a results folder received from
someone else cannot run code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .errors import CellbenchError, DamagedFileError
from .inputs import InputStats
from .io import atomic_path, read_back
from .localizer import CounterConditionedLocalizer
from .methods import MethodSpec, build_localizer, build_model

COUNTER = "counter.pt"
COUNTER_LAST = "counter_last.pt"   # only with train.keep_last_weights
COUNTER_LOG = "counter_log.csv"
COUNTER_CHECKPOINT = "counter.ckpt"
METADATA = "metadata.json"
LOCALIZER = "localizer.pt"
LOCALIZER_LOG = "localizer_log.csv"
LOCALIZER_CHECKPOINT = "localizer.ckpt"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
LOCALIZATION = "localization.csv"          # per test image, source map, rule and radius: tp, fp, fn
POINTS = "points.csv"                      # the points each rule keeps, original-image pixels
LOCALIZATION_SUMMARY = "localization.json"  # thresholds (chosen on validation), radii, test scores
# How long evaluation and localization took, and on what: kept out of metrics.json and
# localization.json so that a rerun on the same machine reproduces those byte for byte.
TIMING = "timing.json"

RESULTS = "results"


def run_dir(results: Path, dataset: str, method: str, seed: int | str, subset: str = "") -> Path:
    """A run's folder; ``subset`` is ``subset_suffix(size, repeat)`` for a run on a training subset."""
    return Path(results) / dataset / method / f"seed{seed}{subset}"


def run_path(name: str, dataset: str = "{dataset}", method: str = "{method}", seed: int | str = "{seed}",
             subset: str = "{subset}") -> str:
    """``results/<dataset>/<method>/seed<k><subset>/<name>``, with wildcards where not given (for rules;
    the subset wildcard is empty for a run on the whole split)."""
    return f"{RESULTS}/{dataset}/{method}/seed{seed}{subset}/{name}"


def _load(path: Path, fields: Iterable[str] = ()) -> dict:
    """A saved counter or localizer: a missing, truncated or foreign file is one message naming it."""
    if not path.is_file():
        raise DamagedFileError(f"{path}: not found; train this run first (run the workflow again)")
    with read_back(path, "trained weights saved by cellbench (torch)"):
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or not set(fields) <= set(data):
            raise ValueError(f"it holds no {', '.join(sorted(set(fields) - set(data or {})))}")
        return data


@dataclass
class SavedCounter:
    """A trained counter: the weights selected on validation (fp32, in counter.pt) and, when
    ``train.keep_last_weights`` is set, the last epoch's (in counter_last.pt; else None)."""
    method: str
    best: dict
    last: dict | None
    best_epoch: int
    best_val_mae: float
    count_scale: float   # count = sum(output map) / count_scale
    width: float = 1.0   # train.width the network was built at
    # What its inputs were normalised with (InputStats.to_dict); None: ImageNet's (runs saved before 2026-12-07)
    input_stats: dict | None = None
    # What it was trained on (domain.Domain.to_dict): predict warns about images far outside it
    domain: dict | None = None

    @property
    def stats(self) -> InputStats:
        """The input statistics the counter was trained with: feed it images normalised with these."""
        return InputStats.from_dict(self.input_stats)

    def save(self, directory: Path) -> None:
        """counter.pt; counter_last.pt when the last weights are kept, else any earlier one removed."""
        with atomic_path(directory / COUNTER) as tmp:
            torch.save(dict(asdict(self), last=None), tmp)
        if self.last is None:
            (directory / COUNTER_LAST).unlink(missing_ok=True)
            return
        with atomic_path(directory / COUNTER_LAST) as tmp:
            torch.save({"method": self.method, "last": self.last}, tmp)

    @classmethod
    def read(cls, directory: Path) -> "SavedCounter":
        saved = cls(**_load(directory / COUNTER, ("method", "best", "count_scale")))
        if saved.last is None and (directory / COUNTER_LAST).is_file():
            saved.last = _load(directory / COUNTER_LAST, ("last",))["last"]
        saved.source = directory / COUNTER   # named in messages (not saved)
        return saved

    def model(self, spec: MethodSpec, which: str = "best") -> torch.nn.Module:
        if which == "last" and self.last is None:
            raise CellbenchError(f"the last epoch's weights of {self.method} were not kept "
                                 f"(train.keep_last_weights: true keeps them)")
        model = build_model(spec, "none", width=self.width)
        load_weights(model, self.best if which == "best" else self.last, getattr(self, "source", self.method),
                     recorded_stats=self.input_stats is not None)
        return model


@dataclass
class SavedLocalizer:
    """A trained localizer (the counter it was trained with is the run's saved counter)."""
    method: str
    best: dict
    best_epoch: int
    best_val_mae: float
    count_scale: float
    wall_seconds: float
    width: float = 1.0

    def save(self, directory: Path) -> None:
        with atomic_path(directory / LOCALIZER) as tmp:
            torch.save(asdict(self), tmp)

    @classmethod
    def read(cls, directory: Path) -> "SavedLocalizer":
        saved = cls(**_load(directory / LOCALIZER, ("method", "best", "count_scale")))
        saved.source = directory / LOCALIZER
        return saved

    def model(self, spec: MethodSpec, counter: torch.nn.Module, density_scale: float) -> CounterConditionedLocalizer:
        """The localizer on top of ``counter``: image -> full-resolution map."""
        localizer = build_localizer(spec, width=self.width)
        load_weights(localizer, self.best, getattr(self, "source", self.method))
        return CounterConditionedLocalizer(counter, localizer, spec.stride, density_scale)


def load_weights(model: torch.nn.Module, state: dict, where, recorded_stats: bool = True) -> None:
    """``state`` into ``model``; weights of another network (an earlier cellbench's, or another
    method's) are one message naming the file, not torch's list of keys."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        why = ("it was trained before 2026-12-07, when networks trained from scratch gained batch norm "
               "(README, Differences): train it again with this cellbench" if not recorded_stats else
               "its weights do not fit the network this cellbench builds for its method")
        raise CellbenchError(f"{where}: cannot be loaded: {why} ({str(exc).splitlines()[0]})") from None


def record_timing(run_dir: Path, stage: str, **figures) -> None:
    """Add one stage's timing (seconds, images per second, device) to the run's timing.json."""
    import json
    path = Path(run_dir) / TIMING
    try:
        timing = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        timing = {}   # a damaged timing file is only timing: start it again
    timing[stage] = figures
    from .io import write_json
    write_json(path, timing)

"""Counting metrics: MAE, RMSE and GAME, on numbers and maps whose values are known by hand."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cellbench.data.prepare import PreparedDataset
from cellbench.inference import counts_and_grids
from cellbench.metrics import coarsen, count_metrics, game_errors, game_metrics, grid_sums


def test_metrics_match_a_direct_computation():
    true = np.array([10, 20, 30, 40])
    pred = np.array([12, 17, 30, 44.5])
    m = count_metrics(true, pred)
    assert m["mae"] == pytest.approx((2 + 3 + 0 + 4.5) / 4)
    assert m["mse"] == pytest.approx((4 + 9 + 0 + 20.25) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt(m["mse"]))
    assert m["rmse"] >= m["mae"]  # why the paper's "MSE" must be an RMSE: its MSE < MAE^2 otherwise


def test_empty_or_mismatched_counts_are_refused():
    with pytest.raises(ValueError):
        count_metrics([], [])
    with pytest.raises(ValueError):
        count_metrics([1, 2], [1])


# GAME on maps whose GAME is known by hand.


def test_game_of_a_count_right_in_every_cell_is_zero_and_in_the_wrong_quadrant_twice_the_count():
    size = (64, 48)                                      # width, height: cells need not be square
    true = grid_sums([[5, 5]] * 10 + [[60, 45]] * 3, size)
    assert true.sum() == 13 and true[0, 0] == 10 and true[7, 7] == 3
    assert game_metrics(true[None], true[None]) == {"game0": 0.0, "game1": 0.0, "game2": 0.0, "game3": 0.0}
    # the right total (10) but in the bottom-right quadrant instead of the top-left one
    top_left = grid_sums([[5, 5]] * 10, size)
    bottom_right = grid_sums([[50, 40]] * 10, size)
    assert game_metrics(bottom_right[None], top_left[None]) == {"game0": 0.0, "game1": 20.0, "game2": 20.0,
                                                                "game3": 20.0}
    # one cell off at the finest grid only: (5,5) and (12,5) share a cell of 16 px but not of 8 px
    near = grid_sums([[12, 5]] * 10, size)
    assert {k: v.tolist() for k, v in game_errors(near[None], top_left[None]).items()} == {
        "game0": [0.0], "game1": [0.0], "game2": [0.0], "game3": [20.0]}
    # a point outside the image (padding) counts in the nearest cell: the total is kept
    assert grid_sums([[-3, 70]], size, weights=[2.5])[7, 0] == 2.5
    np.testing.assert_array_equal(coarsen(true, 0), [[13]])


class _FixedMaps(nn.Module):
    """A 'model' that outputs given maps, one per patch in order, whatever the input."""

    def __init__(self, maps: torch.Tensor):
        super().__init__()
        self.register_buffer("maps", maps)
        self.seen = 0

    def forward(self, x):
        out = self.maps[self.seen:self.seen + len(x)]
        self.seen += len(x)
        return out


def test_game_from_maps_is_in_original_image_pixels():
    # One 64x64 image cut into its left and right halves (32 wide, 64 tall), each a 32x32 patch
    # with only its rows halved: a patch point (x, y) lies at (x + 0.5 + left, 2y + 0.5) in the
    # original (patch_scale (1, 2), patch_offset (0.5 + left, 0.5)). Not a geometry prepare makes:
    # the anisotropic scale and the offset check that both are applied, to the right axis.
    # The model's maps have stride 4.
    data = PreparedDataset(
        images=np.zeros((2, 32, 32, 3), np.uint8), points=np.array([[2.0, 2.0], [29.0, 29.0]], np.float32),
        point_offsets=np.array([0, 1, 2]), patch_image=np.array([0, 0]), image_ids=np.array(["a"]),
        image_groups=np.array(["a"]), image_counts=np.array([2]), image_sizes=np.array([[64, 64]]),
        patch_scale=np.array([[1.0, 2.0], [1.0, 2.0]]), patch_offset=np.array([[0.5, 0.5], [32.5, 0.5]]))
    maps = torch.zeros(2, 1, 8, 8)
    maps[0, 0, 0, 0] = 1.0      # patch 0, map pixel (0,0) -> patch (1.5,1.5) -> original (2, 3.5): top-left
    maps[1, 0, 7, 7] = 1.0      # patch 1, map pixel (7,7) -> patch (29.5,29.5) -> original (62, 59.5): bottom-right
    counts, grids, _ = counts_and_grids(_FixedMaps(maps), data, torch.device("cpu"), stride=4)
    assert counts.tolist() == [2.0] and grids.sum() == 2.0 and grids[0, 0, 0] == 1 and grids[0, 7, 7] == 1
    true = [grid_sums([[2.0 * 1 + 0.5, 2.0 * 2 + 0.5], [29.0 + 32.5, 29.0 * 2 + 0.5]], (64, 64))]
    assert game_metrics(grids, true) == {"game0": 0.0, "game1": 0.0, "game2": 0.0, "game3": 0.0}
    # the same mass in the other patch's corner: right in total, wrong in place
    swapped = torch.zeros(2, 1, 8, 8)
    swapped[0, 0, 7, 7] = swapped[1, 0, 0, 0] = 1.0
    _, grids, _ = counts_and_grids(_FixedMaps(swapped), data, torch.device("cpu"), stride=4)
    game = game_metrics(grids, true)
    assert game["game0"] == 0.0 and game["game1"] == 4.0 and game["game3"] == 4.0


def test_the_game_table_shows_mean_and_spread_marks_failures_and_never_bolds_the_floor():
    from cellbench.reporting.collect import summarise
    from cellbench.reporting.tables import table_game

    def row(method, seed, game, status="trained", present=True):
        return {"dataset": "VGG", "method": method, "seed": seed, "mae": game[0], "rmse": game[0], "present": present,
                "collapsed": status == "collapsed", "did_not_learn": status == "did not learn",
                **{f"game{L}": g for L, g in enumerate(game)}}
    per_seed = pd.DataFrame([
        row("fcrn", 0, [4.0, 6.0, 9.0, 14.0]), row("fcrn", 1, [6.0, 8.0, 11.0, 18.0]),
        row("mean_count", 0, [50.0, 52.0, 55.0, 12.0]), row("mean_count", 1, [50.0, 52.0, 55.0, 12.0]),
        row("csrnet", 0, [1.0, 1.0, 1.0, 1.0], status="collapsed"), row("csrnet", 1, [2.0, 2.0, 2.0, 2.0]),
    ])
    frame, grid = table_game(summarise(per_seed), ["VGG"], ["fcrn", "mean_count", "csrnet"], floors=["mean_count"])
    cells = {r[0]: r[1:] for r in grid.rows}
    assert cells["fcrn"][0] == f"5.00 ± {np.std([4, 6], ddof=1):.2f}" and cells["fcrn"][3].startswith("16.00")
    assert cells["csrnet"] == ["collapsed (1 of 2 seeds)"] * 4     # never a number, though the lowest
    # the floor's flat map beats fcrn at GAME(3) (12 < 16) but is not bold; fcrn is, in every column
    fcrn_row = [r[0] for r in grid.rows].index("fcrn")
    assert grid.bold == {(fcrn_row, c) for c in range(1, 5)}
    assert frame[(frame["method"] == "fcrn") & (frame["metric"] == "GAME(2)")]["mean"].item() == pytest.approx(10.0)

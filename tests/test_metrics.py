import numpy as np
import pytest

from cellbench.metrics import count_metrics


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

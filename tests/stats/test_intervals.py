import numpy as np
import pytest
from scipy import stats as st

from dex_bias.stats.intervals import bootstrap_ci, wilson_interval
from tests.stats.conftest import assert_interval_near, scipy_interval


def test_wilson_matches_scipy_binomtest():
    for k, n in [(0, 10), (3, 10), (47, 200), (200, 200)]:
        expected = st.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_is_vectorised_and_undefined_for_empty_groups():
    low, high = wilson_interval(np.array([1, 5, 0]), np.array([10, 20, 0]), confidence=0.9)
    expected = st.binomtest(5, 20).proportion_ci(confidence_level=0.9, method="wilson")
    assert (low[1], high[1]) == pytest.approx((expected.low, expected.high))
    assert np.isnan(low[2]) and np.isnan(high[2])
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_bootstrap_matches_direct_resampling_and_scipy():
    rng = np.random.default_rng(1)
    y_true = rng.uniform(0, 80, 300)
    y_pred = y_true + rng.normal(2, 5, 300)
    mae = lambda t, p: np.mean(np.abs(p - t))  # noqa: E731
    low, high = bootstrap_ci(y_true, y_pred, statistic=mae, n_boot=400, seed=7)
    # the same draws, made directly
    draws = np.random.default_rng(7)
    replicates = []
    for _ in range(400):
        rows = draws.integers(0, 300, 300)
        replicates.append(mae(y_true[rows], y_pred[rows]))
    assert (low, high) == pytest.approx(tuple(np.quantile(replicates, [0.025, 0.975])))
    # and it agrees with scipy's percentile bootstrap up to Monte Carlo error
    reference = scipy_interval((y_true, y_pred), mae, paired=True, vectorized=False, n_resamples=2000, seed=3)
    assert_interval_near(low, high, reference, 0.15)
    assert low < mae(y_true, y_pred) < high


def test_vectorized_bootstrap_gives_the_same_interval_from_the_same_draws():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.uniform(0, 80, 257), rng.uniform(0, 80, 257)
    loop = bootstrap_ci(y_true, y_pred, statistic=lambda t, p: float(np.mean(np.abs(p - t))), n_boot=300, seed=4)
    block = bootstrap_ci(
        y_true, y_pred, statistic=lambda t, p: np.mean(np.abs(p - t), axis=-1), n_boot=300, seed=4, vectorized=True
    )
    assert block == pytest.approx(loop, abs=1e-12)

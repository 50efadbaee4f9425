"""Confidence intervals: Wilson score intervals for rates, percentile bootstrap for any statistic.

Thin entry points over ``dex_bias.stats.engine`` (which every table uses) for callers that hold
plain arrays rather than a table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dex_bias.stats.engine import bootstrap_replicates, percentile_interval, wilson


def wilson_interval(successes, n, confidence: float = 0.95) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Wilson score interval for a binomial proportion ``successes / n`` (statsmodels' ``proportion_confint``).

    Vectorised over array-like ``successes`` and ``n`` (counts, broadcast together); returns
    ``(low, high)`` as proportions in [0, 1], floats for scalar input. Where ``n == 0`` the rate
    is undefined and both bounds are NaN: callers report such groups with a status instead.

    Reference: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
    inference", JASA 22(158); Brown, Cai & DasGupta (2001), Statistical Science 16(2), eq. 4.
    """
    successes_array, n_array = np.broadcast_arrays(np.asarray(successes, float), np.asarray(n, float))
    return wilson(successes_array, n_array, confidence)


def bootstrap_ci(
    *samples,
    statistic: Callable[..., float],
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    vectorized: bool = False,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples)``.

    ``samples`` are equal-length 1-D arrays resampled *jointly* (the same row indices for each,
    so a paired metric such as ``mae(y_true, y_pred)`` keeps its pairs), with draws from
    ``numpy.random.default_rng(seed)``. ``vectorized=True`` promises that ``statistic``
    reduces over the last axis (arrays of shape ``(replicates, n)`` give ``(replicates,)``);
    otherwise it is called once per replicate. Returns ``(low, high)``; ``(nan, nan)`` for
    empty samples.

    Reference: Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13.
    """
    arrays = [np.asarray(s) for s in samples]
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one sample")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_ci: samples must have equal length (they are resampled jointly)")
    if n == 0:
        return float("nan"), float("nan")

    def function(*resampled):
        if vectorized:
            return statistic(*resampled)
        return np.array([statistic(*(a[b] for a in resampled)) for b in range(len(resampled[0]))])

    replicates = bootstrap_replicates(arrays, function, n_boot, np.random.default_rng(seed))
    return percentile_interval(replicates, confidence)

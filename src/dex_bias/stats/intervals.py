"""Confidence intervals: Wilson score intervals for rates, percentile bootstrap for any statistic."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats as st


def wilson_interval(successes, n, confidence: float = 0.95) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    Vectorised over array-like ``successes`` and ``n`` (counts, broadcast together); returns
    ``(low, high)`` as proportions in [0, 1], floats for scalar input. Where ``n == 0`` the rate
    is undefined and both bounds are NaN: callers report such groups with a status instead.

    Reference: E. B. Wilson (1927), "Probable inference, the law of succession, and statistical
    inference", JASA 22(158); Brown, Cai & DasGupta (2001), Statistical Science 16(2), eq. 4.
    """
    k = np.asarray(successes, dtype=float)
    total = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > total):
        raise ValueError("wilson_interval: successes must lie between 0 and n")
    z = st.norm.ppf(0.5 + confidence / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / total
        denominator = 1.0 + z**2 / total
        centre = (p + z**2 / (2.0 * total)) / denominator
        half_width = z * np.sqrt(p * (1.0 - p) / total + z**2 / (4.0 * total**2)) / denominator
        low = np.clip(centre - half_width, 0.0, 1.0)
        high = np.clip(centre + half_width, 0.0, 1.0)
    low = np.where(total > 0, low, np.nan)
    high = np.where(total > 0, high, np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


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
    so a paired metric such as ``mae(y_true, y_pred)`` keeps its pairs). Draws come from
    ``numpy.random.default_rng(seed)``: one ``integers(0, n, n)`` per replicate, in order.
    Returns ``(low, high)``, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the replicates; ``(nan, nan)`` for empty samples.

    ``vectorized=True`` promises that ``statistic`` reduces over the last axis (given arrays of
    shape ``(replicates, n)`` it returns ``(replicates,)``): the replicates are then computed in
    blocks, from exactly the same draws, many times faster.

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
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot, dtype=float)
    if vectorized:
        # Blocks of about 4 M indices keep memory flat for large groups; one integers() call
        # of shape (k, n) draws the same stream as k calls of shape (n,).
        block = max(1, min(n_boot, 4_000_000 // n))
        for start in range(0, n_boot, block):
            stop = min(n_boot, start + block)
            rows = rng.integers(0, n, (stop - start, n))
            replicates[start:stop] = statistic(*(a[rows] for a in arrays))
    else:
        for b in range(n_boot):
            rows = rng.integers(0, n, n)
            replicates[b] = statistic(*(a[rows] for a in arrays))
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)

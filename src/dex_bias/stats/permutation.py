"""Stratified permutation tests of a stratum-standardised group difference, with bootstrap intervals.

The effect a report states for group *g* is a **stratum-standardised difference**: within each
stratum *s* (a band of true age × gender, say) the mean of the per-row value (absolute error,
signed error, a gate event 0/1) among *g*'s rows minus the mean among the comparison rows, averaged
over the strata with the weights of *g*'s own composition (``w_s = n_gs / Σ n_gs``): "how much
larger is the error of *g* than that of other people of the same age and gender". Strata that
hold no comparison row (or no row of *g*) carry no information about the difference and are left
out; the number of *g*'s rows used is reported.

The test permutes the values *within strata* (equivalently, the group labels), which keeps every
stratum's composition, so under the null "within a stratum the value does not depend on the
group" every permutation is equally likely and the p-value is exact up to Monte-Carlo error,
whatever the groups' age mixes. The p-value is ``(1 + #{|T*| ≥ |T|}) / (1 + B)`` (two-sided; the
``+1`` keeps it valid for any number of permutations B). Direction is the sign of the same
statistic. The interval is a percentile bootstrap of the same statistic: each side's rows are
resampled and the standardised difference (its strata and weights) recomputed in every
replicate.

Every statistic here is linear in the values, ``T = Σᵢ aᵢ vᵢ`` with coefficients fixed by each
row's stratum and side, so a block of B permutations or resamples is one matrix product.

References: Good (2005), Permutation, Parametric and Bootstrap Tests of Hypotheses, §3.5-3.6
(permutations within blocks); Phipson & Smyth (2010), "Permutation p-values should never be
zero", Stat. Appl. Genet. Mol. Biol. 9(1); Mantel & Haenszel (1959) and van Elteren (1960) for
stratified comparisons of groups; Efron & Tibshirani (1993) ch. 8 and 13 (two-sample bootstrap,
percentile interval).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dex_bias.stats.engine import BLOCK_ENTRIES, percentile_interval

#: Relative tolerance under which a permuted statistic counts as equal to the observed one
#: (discrete values, such as gate events, give exact ties that floating point must not break).
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Contrast:
    """Coefficients of one group's standardised difference: ``effect = Σᵢ coefficient[i] · value[i]``.

    Attributes:
        coefficient: ``(n,)``; ``w_s / n_gs`` on the group's rows and ``−w_s / n_rs`` on the
            comparison rows of usable strata, 0 elsewhere.
        n_group, n_other: rows of the group and of the comparison (all strata).
        n_group_used, n_other_used: their rows in usable strata.
        strata_used: usable strata (both sides present).
    """

    coefficient: np.ndarray
    n_group: int
    n_other: int
    n_group_used: int
    n_other_used: int
    strata_used: int

    @property
    def usable(self) -> bool:
        return self.strata_used > 0


def standardised_contrast(in_group: np.ndarray, in_other: np.ndarray, strata: np.ndarray) -> Contrast:
    """The contrast of rows ``in_group`` against rows ``in_other``, standardised to the group's strata.

    Args:
        in_group, in_other: boolean ``(n,)`` masks (disjoint); rows in neither are ignored.
        strata: ``(n,)`` stratum labels (any hashable values; NaN-free integers are fastest).
    """
    in_group, in_other = np.asarray(in_group, bool), np.asarray(in_other, bool)
    if np.any(in_group & in_other):
        raise ValueError("a row cannot be in the group and in the comparison at once")
    codes, stratum = np.unique(np.asarray(strata), return_inverse=True)
    n_g = np.bincount(stratum[in_group], minlength=len(codes)).astype(float)
    n_o = np.bincount(stratum[in_other], minlength=len(codes)).astype(float)
    usable = (n_g > 0) & (n_o > 0)
    coefficient = np.zeros(len(in_group))
    if usable.any():
        weight = np.where(usable, n_g, 0.0) / n_g[usable].sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            group_coef = np.where(usable, weight / n_g, 0.0)
            other_coef = np.where(usable, weight / n_o, 0.0)
        coefficient = np.where(in_group, group_coef[stratum], 0.0) - np.where(in_other, other_coef[stratum], 0.0)
    return Contrast(
        coefficient,
        int(in_group.sum()),
        int(in_other.sum()),
        int(n_g[usable].sum()),
        int(n_o[usable].sum()),
        int(usable.sum()),
    )


def _within_strata_permutations(order_rank: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, n)`` permutations of positions 0..n-1 that move rows only within their stratum.

    ``order_rank`` is the (sorted, non-decreasing) stratum rank of each position: adding a
    uniform key in [0, 1) to it and sorting keeps every stratum's positions together and
    shuffles them uniformly.
    """
    keys = rng.random((count, len(order_rank))) + order_rank[None, :]
    return np.argsort(keys, axis=1, kind="stable")


@dataclass(frozen=True)
class PermutationResult:
    """Observed effects, their permutation p-values and the permutation null of every contrast."""

    effects: np.ndarray  # (k,)
    p_values: np.ndarray  # (k,) two-sided
    null: np.ndarray  # (n_perm, k)
    omnibus_statistic: float  # Σ ω_k effect_k², ω ∝ rows used
    omnibus_p: float


def permutation_test(
    values: np.ndarray,
    strata: np.ndarray,
    coefficients: np.ndarray,
    *,
    n_perm: int,
    rng: np.random.Generator,
    omnibus_weights: np.ndarray | None = None,
) -> PermutationResult:
    """Permutation test of linear statistics ``T_k = Σᵢ coefficients[i, k] · values[i]``.

    Values are permuted within strata (``n_perm`` random permutations, in blocks). Rows whose
    coefficients are all 0 cannot change any statistic and are left out of the shuffling.

    Args:
        values: ``(n,)`` finite per-row values.
        strata: ``(n,)`` stratum labels; the coefficients must be constant within stratum × side
            (as ``standardised_contrast`` makes them), which is what makes the permutation exact.
        coefficients: ``(n, k)``, one column per contrast.
        omnibus_weights: ``(k,)`` weights ω of the omnibus statistic ``Σ ω_k T_k²``; equal when None.

    Returns:
        ``PermutationResult``; p-values are ``(1 + #{|T*| ≥ |T|}) / (1 + n_perm)``.
    """
    values = np.asarray(values, float)
    coefficients = np.asarray(coefficients, float).reshape(len(values), -1)
    k = coefficients.shape[1]
    weights = np.ones(k) / max(k, 1) if omnibus_weights is None else np.asarray(omnibus_weights, float)
    effects = values @ coefficients
    omnibus = float(np.sum(weights * effects**2))
    keep = np.any(coefficients != 0, axis=1)
    null = np.zeros((n_perm, k))
    if keep.any():
        codes, stratum = np.unique(np.asarray(strata)[keep], return_inverse=True)
        order = np.argsort(stratum, kind="stable")
        sorted_values = values[keep][order]
        sorted_coefficients = coefficients[keep][order]
        rank = stratum[order].astype(float)
        block = max(1, min(n_perm, BLOCK_ENTRIES // max(len(order), 1)))
        for start in range(0, n_perm, block):
            stop = min(n_perm, start + block)
            permuted = sorted_values[_within_strata_permutations(rank, stop - start, rng)]
            null[start:stop] = permuted @ sorted_coefficients
    scale = np.maximum(np.abs(effects), 1e-300)
    exceed = np.abs(null) >= np.abs(effects)[None, :] - TIE_TOLERANCE * np.maximum(scale, 1.0)
    p_values = (1.0 + exceed.sum(axis=0)) / (1.0 + n_perm)
    null_omnibus = (null**2) @ weights
    omnibus_p = float((1.0 + np.sum(null_omnibus >= omnibus - TIE_TOLERANCE * max(omnibus, 1.0))) / (1.0 + n_perm))
    return PermutationResult(effects, p_values, null, omnibus, omnibus_p)


def standardised_difference(
    values: np.ndarray, in_group: np.ndarray, in_other: np.ndarray, strata: np.ndarray
) -> float:
    """The stratum-standardised difference of ``values`` between two sets of rows (NaN when no stratum has both)."""
    contrast = standardised_contrast(in_group, in_other, strata)
    return float(np.asarray(values, float) @ contrast.coefficient) if contrast.usable else float("nan")


def _resampled_cell_sums(
    rows: np.ndarray, count: int, values: np.ndarray, stratum: np.ndarray, n_strata: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` bootstrap resamples of ``rows``: per replicate and stratum, the sum of ``values`` and the row count."""
    drawn = rows[rng.integers(0, len(rows), (count, len(rows)))]
    cells = ((np.arange(count) * n_strata)[:, None] + stratum[drawn]).ravel()
    total = np.bincount(cells, weights=values[drawn].ravel(), minlength=count * n_strata)
    size = np.bincount(cells, minlength=count * n_strata)
    return total.reshape(count, n_strata), size.reshape(count, n_strata).astype(float)


def bootstrap_difference_interval(
    values: np.ndarray,
    in_group: np.ndarray,
    in_other: np.ndarray,
    strata: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the stratum-standardised difference.

    Each side is resampled as a whole (its row count kept) and the standardised difference is
    recomputed in every replicate, strata and weights included; so the interval carries the
    sampling variability of the group's own age-gender composition too, and strata holding a
    single row (which a resample within stratum × side cells could never vary) cannot make it
    too narrow. Comparison rows in strata the group never has cannot enter any replicate's
    statistic and are left out.
    """
    values = np.asarray(values, float)
    in_group, in_other = np.asarray(in_group, bool), np.asarray(in_other, bool)
    codes, stratum = np.unique(np.asarray(strata), return_inverse=True)
    group_rows = np.flatnonzero(in_group)
    other_rows = np.flatnonzero(in_other & np.isin(stratum, np.unique(stratum[group_rows])))
    if len(group_rows) == 0 or len(other_rows) == 0:
        return float("nan"), float("nan")
    n_strata = len(codes)
    replicates = np.empty(n_boot)
    block = max(1, min(n_boot, BLOCK_ENTRIES // max(len(group_rows) + len(other_rows), 1)))
    for start in range(0, n_boot, block):
        count = min(n_boot, start + block) - start
        group_sum, group_n = _resampled_cell_sums(group_rows, count, values, stratum, n_strata, rng)
        other_sum, other_n = _resampled_cell_sums(other_rows, count, values, stratum, n_strata, rng)
        usable = (group_n > 0) & (other_n > 0)
        weight = np.where(usable, group_n, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = weight / weight.sum(axis=1, keepdims=True)
            difference = np.where(
                usable,
                group_sum / np.where(group_n > 0, group_n, 1.0) - other_sum / np.where(other_n > 0, other_n, 1.0),
                0.0,
            )
            replicates[start : start + count] = np.where(
                usable.any(axis=1), np.sum(weight * difference, axis=1), np.nan
            )
    return percentile_interval(replicates, confidence)

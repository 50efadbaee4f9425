"""One grouping and bootstrap engine for every table of the audit (Fairlearn ``MetricFrame`` in spirit).

A metric is a plain function of per-row columns (``Metric``): the error metrics take true and
estimated age, a gate rate takes an event indicator, balanced MAE takes the absolute error and a
reference-cell code. ``metric_frame`` evaluates any set of metrics overall, per group of each
sensitive feature and per intersection, optionally inside each value of an *outer* column (e.g.
``model_name``, so several models are tabled side by side), and adds to every row its ``n``, a
small-group flag, a status that says what could not be computed and why, and an interval per
metric from the same code path: a percentile bootstrap over the group's rows (optionally
resampled within strata), or a Wilson score interval for rates. ``spread_frame`` measures how far
apart the groups of one feature are (max − min, max / min and the Gini coefficient, NIST style),
with intervals from the same bootstrap replicates.

Labels have one format everywhere: ``grouping`` is ``overall`` or the features joined by
`` × `` (``race × gender``), ``group`` is ``all`` or the values joined by `` · ``
(``Black · female``).

Every bootstrap draw is seeded from ``seed`` and the row's own label (outer value, grouping,
group, metric), so a row's interval does not depend on which other rows the table holds, and the
same seed gives the same table.

References: Bird et al. (2020), "Fairlearn: A toolkit for assessing and improving fairness in
AI" (MetricFrame); Efron & Tibshirani (1993), An Introduction to the Bootstrap, ch. 13
(percentile interval) and ch. 8 (stratified resampling); Wilson (1927), JASA 22(158); NIST IR
8525 (Hanaoka et al. 2024), Face Analysis Technology Evaluation: Age Estimation and Verification
(spread of a metric across demographic groups as max − min and the Gini coefficient); Gini
(1912), Variabilità e mutabilità.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from dex_bias.utkface import DEFAULT_AGE_BANDS

OVERALL = "overall"
ALL = "all"
GROUPING_JOIN = " × "
GROUP_JOIN = " · "
#: Bootstrap index blocks hold at most this many entries (replicates × rows), so memory stays flat.
BLOCK_ENTRIES = 2_000_000

STATUS_OK = "ok"
STATUS_NO_CASES = "no_cases"


@dataclass(frozen=True)
class Estimation:
    """How every table of the audit is estimated: one value handed from the settings to each function.

    Attributes:
        bands: inclusive ``(low, high)`` true-age bands (years) of the ``age_band`` groups.
        confidence: the level of every interval (percentile bootstrap and Wilson).
        min_n: groups with fewer rows are flagged ``small_group`` (estimates indicative only) and
            left out of spreads and buffers.
        n_boot: bootstrap replicates per interval.
        seed: the base seed; each row × metric draws from ``row_seed(seed, outer, grouping,
            group, metric)``, so a row's interval does not depend on the rest of the table.
    """

    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS
    confidence: float = 0.95
    min_n: int = 30
    n_boot: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Metric:
    """A statistic of per-row columns, evaluated per group by ``metric_frame``.

    Attributes:
        function: ``function(*arrays) -> value``; each array holds one of ``columns`` for the
            group's rows, shape ``(n,)`` for the estimate and ``(replicates, n)`` for a block of
            bootstrap replicates, over whose last axis the function reduces (so that one call
            evaluates many replicates).
        columns: the table columns passed to ``function``, in order.
        interval: ``bootstrap`` (percentile bootstrap over the group's rows), ``wilson`` (the
            function is the mean of a 0/1 indicator, its single column; Wilson score interval)
            or ``none``.
        strata: a column whose levels are resampled separately in the bootstrap (each level
            keeps its row count in every replicate), or None.
        undefined: ``undefined(*arrays) -> str | None``: why the metric is undefined for these
            rows (None when it is defined); the reason goes to the row's ``notes``.
    """

    function: Callable[..., np.ndarray]
    columns: tuple[str, ...] = ("age", "predicted_age")
    interval: str = "bootstrap"
    strata: str | None = None
    undefined: Callable[..., str | None] | None = None

    def __post_init__(self) -> None:
        if self.interval not in ("bootstrap", "wilson", "none"):
            raise ValueError(f"Metric.interval must be 'bootstrap', 'wilson' or 'none', not {self.interval!r}")
        if self.interval == "wilson" and len(self.columns) != 1:
            raise ValueError("a Wilson-interval metric is the mean of one 0/1 indicator column")


@dataclass(frozen=True)
class Group:
    """The rows of one group: ``rows`` are integer positions into the table."""

    outer: object
    grouping: tuple[str, ...]
    key: tuple
    rows: np.ndarray

    @property
    def grouping_label(self) -> str:
        return grouping_label(self.grouping)

    @property
    def label(self) -> str:
        return group_label(self.key) if self.grouping else ALL


def grouping_label(grouping: Sequence[str]) -> str:
    """``overall`` for no feature, else the features joined by `` × ``."""
    return GROUPING_JOIN.join(grouping) if grouping else OVERALL


def group_label(key: Sequence) -> str:
    """The group's values joined by `` · `` (``all`` for the whole table)."""
    return GROUP_JOIN.join(str(value) for value in key) if len(key) else ALL


def groupings(features: Sequence[str], intersections: bool = True) -> list[tuple[str, ...]]:
    """``()`` (overall), each feature, and (when asked) every intersection of two or more."""
    out: list[tuple[str, ...]] = [()]
    for size in range(1, (len(features) if intersections else 1) + 1):
        out.extend(itertools.combinations(features, size))
    return out


def iter_groups(
    table: pd.DataFrame, features: Sequence[str], *, intersections: bool = True, outer: str | None = None
) -> Iterator[Group]:
    """Every group of ``table``: overall, per feature and per intersection, inside each outer value.

    Groups are the combinations present in the table (categorical columns keep their category
    order; other columns sort). Rows whose feature value is missing belong to no group of that
    feature. ``outer`` (a column such as ``model_name``) splits the table first: every grouping
    is then made within each outer value.
    """
    outer_parts: list[tuple[object, np.ndarray]]
    if outer is None:
        outer_parts = [(None, np.arange(len(table)))]
    else:
        if outer not in table.columns:
            raise KeyError(f"outer grouping column {outer!r} is not in the table (columns: {list(table.columns)})")
        indices = table.groupby(outer, observed=True, sort=True, dropna=True).indices
        outer_parts = [(value, np.asarray(rows)) for value, rows in indices.items()]
    for outer_value, outer_rows in outer_parts:
        part = table.iloc[outer_rows]
        for grouping in groupings(features, intersections):
            if not grouping:
                yield Group(outer_value, (), (), outer_rows)
                continue
            indices = part.groupby(list(grouping), observed=True, sort=True, dropna=True).indices
            for key, rows in indices.items():
                key = key if isinstance(key, tuple) else (key,)
                yield Group(outer_value, grouping, key, outer_rows[np.asarray(rows)])


def row_seed(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash of ``parts`` (labels), reproducible alone."""
    return np.random.default_rng([int(seed) % (2**32), zlib.crc32("|".join(map(str, parts)).encode("utf-8"))])


def bootstrap_indices(
    n: int, replicates: int, rng: np.random.Generator, strata: np.ndarray | None = None
) -> np.ndarray:
    """``(replicates, n)`` row indices drawn with replacement, within strata when given.

    With ``strata`` (length-``n`` labels) every replicate keeps each stratum's row count: the
    draws for a position come from the rows of that position's stratum only.
    """
    if strata is None:
        return rng.integers(0, n, (replicates, n)) if n else np.zeros((replicates, 0), dtype=np.int64)
    out = np.empty((replicates, n), dtype=np.int64)
    codes, inverse = np.unique(np.asarray(strata), return_inverse=True)
    for code in range(len(codes)):
        positions = np.flatnonzero(inverse == code)
        out[:, positions] = positions[rng.integers(0, len(positions), (replicates, len(positions)))]
    return out


def bootstrap_replicates(
    arrays: Sequence[np.ndarray],
    function: Callable[..., np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    *,
    strata: np.ndarray | None = None,
    replicate_arrays: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """``(n_boot,)`` values of ``function`` on bootstrap resamples of the rows of ``arrays``.

    The arrays (each ``(n,)``) are resampled jointly (the same rows for each), in blocks of
    replicates so memory stays flat. ``replicate_arrays`` maps an argument position to an
    ``(n_boot, n)`` array whose row ``b`` is used in replicate ``b`` (e.g. an estimate refitted
    on a bootstrap sample of other data): its entries are gathered at the same resampled rows.
    """
    n = len(arrays[0]) if arrays else 0
    out = np.full(n_boot, np.nan)
    if n == 0:
        return out
    block = max(1, min(n_boot, BLOCK_ENTRIES // max(n, 1)))
    replicate_arrays = dict(replicate_arrays or {})
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        rows = bootstrap_indices(n, stop - start, rng, strata)
        args = []
        for position, array in enumerate(arrays):
            if position in replicate_arrays:
                args.append(np.take_along_axis(replicate_arrays[position][start:stop], rows, axis=1))
            else:
                args.append(np.asarray(array)[rows])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = function(*args)
    return out


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The ``(1 ∓ confidence) / 2`` quantiles of the finite replicates (NaN when none is finite)."""
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    return float(low), float(high)


def wilson(events, n, confidence: float = 0.95) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Wilson score interval of ``events / n`` (statsmodels), NaN where ``n == 0``; vectorised."""
    events_array, n_array = np.asarray(events, dtype=float), np.asarray(n, dtype=float)
    if np.any(events_array < 0) or np.any(events_array > n_array):
        raise ValueError("Wilson interval: events must lie between 0 and n")
    safe_n = np.where(n_array > 0, n_array, 1.0)
    low, high = proportion_confint(events_array, safe_n, alpha=1.0 - confidence, method="wilson")
    low = np.where(n_array > 0, np.clip(low, 0.0, 1.0), np.nan)
    high = np.where(n_array > 0, np.clip(high, 0.0, 1.0), np.nan)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def _size_status(n: int, min_n: int) -> str:
    if n == 0:
        return STATUS_NO_CASES
    return "small_group" if n < min_n else STATUS_OK


def metric_frame(
    table: pd.DataFrame,
    metrics: Mapping[str, Metric],
    sensitive_features: Sequence[str],
    *,
    outer: str | None = None,
    intersections: bool = True,
    where: str | None = None,
    estimation: Estimation = Estimation(),
    min_n_interval: int = 2,
    replicate_columns: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Evaluate ``metrics`` overall, per group of each sensitive feature and per intersection.

    Args:
        table: one row per face; holds every metric's columns and the sensitive features.
        metrics: name → ``Metric``; the output has one column per name (and its interval).
        sensitive_features: columns to group by.
        outer: a column (e.g. ``model_name``) within each of whose values every grouping is
            made; its value leads each output row. None: the table is one population.
        intersections: also every combination of two or more features.
        where: a boolean column: groups are formed from all rows, metrics use only the rows
            where it is True (e.g. minors only, for a gate rate); a group with none of those
            rows gets status ``no_cases`` and NaN metrics (never a rate of 0).
        estimation: ``n_boot``, ``seed``, ``confidence`` and ``min_n`` (groups with fewer rows
            get status ``small_group``) of :class:`Estimation`.
        min_n_interval: groups with fewer rows get no interval (NaN bounds, said in ``notes``).
        replicate_columns: column → ``(n_boot, len(table))`` array used in place of the column
            in bootstrap replicate ``b`` (row ``b``); e.g. corrected ages from a correction
            refitted on the ``b``-th bootstrap sample of its calibration data, so the interval
            carries the refit's uncertainty too.

    Returns:
        One row per (outer value ×) group: [``outer``], ``grouping``, ``group``, one column per
        sensitive feature (the group's value as text, empty where the grouping does not use
        it), ``n`` (rows the metrics used), each metric with ``<metric>_ci_low`` and
        ``<metric>_ci_high`` (for interval ``none``: no bounds), ``<metric>_events`` for Wilson
        metrics, ``small_group`` (0 < n < min_n), ``status`` (``ok``, ``small_group``,
        ``no_cases``) and ``notes`` (why a group is small, metrics left undefined and why). An empty table (these
        columns) when ``table`` has no rows.
    """
    replicate_columns = dict(replicate_columns or {})
    for name, values in replicate_columns.items():
        if np.shape(values) != (estimation.n_boot, len(table)):
            raise ValueError(
                f"replicate column {name!r} must have shape (n_boot, rows) = {(estimation.n_boot, len(table))}, "
                f"not {np.shape(values)}"
            )
    needed = {column for metric in metrics.values() for column in metric.columns}
    needed |= {metric.strata for metric in metrics.values() if metric.strata}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise KeyError(f"metric_frame: the table lacks column(s) {missing} that the metrics read")
    columns = {column: table[column].to_numpy() for column in needed}
    selected = table[where].to_numpy(dtype=bool) if where is not None else None
    rows_out = []
    for group in iter_groups(table, sensitive_features, intersections=intersections, outer=outer):
        rows = group.rows if selected is None else group.rows[selected[group.rows]]
        n = len(rows)
        row: dict[str, object] = {} if outer is None else {outer: group.outer}
        row.update(
            {
                "grouping": group.grouping_label,
                "group": group.label,
                **{
                    feature: (str(group.key[group.grouping.index(feature)]) if feature in group.grouping else "")
                    for feature in sensitive_features
                },
                "n": n,
            }
        )
        notes = []
        for name, metric in metrics.items():
            arrays = [columns[column][rows].astype(float) for column in metric.columns]
            reason = None
            if n == 0:
                value = float("nan")
            else:
                reason = metric.undefined(*arrays) if metric.undefined else None
                with np.errstate(invalid="ignore", divide="ignore"):
                    value = float("nan") if reason else float(metric.function(*arrays))
            row[name] = value
            if metric.interval == "wilson":
                events = int(round(np.nansum(arrays[0]))) if n else 0
                row[f"{name}_events"] = events
                low, high = wilson(events, n, estimation.confidence) if n else (float("nan"), float("nan"))
            elif metric.interval == "bootstrap":
                low = high = float("nan")
                if n >= max(min_n_interval, 1) and np.isfinite(value):
                    rng = row_seed(estimation.seed, group.outer, group.grouping_label, group.label, name)
                    replicate_arrays = {
                        position: replicate_columns[column][:, rows]
                        for position, column in enumerate(metric.columns)
                        if column in replicate_columns
                    }
                    strata = columns[metric.strata][rows] if metric.strata else None
                    replicates = bootstrap_replicates(
                        arrays,
                        metric.function,
                        estimation.n_boot,
                        rng,
                        strata=strata,
                        replicate_arrays=replicate_arrays,
                    )
                    low, high = percentile_interval(replicates, estimation.confidence)
                elif 0 < n < min_n_interval:
                    notes.append(f"{name}: no interval (n={n} < {min_n_interval})")
            if metric.interval != "none":
                row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high
            if reason:
                notes.append(f"{name}: {reason}")
        row["small_group"] = 0 < n < estimation.min_n
        row["status"] = _size_status(n, estimation.min_n)
        if row["small_group"]:
            notes.insert(0, f"small group: n={n} < {estimation.min_n}, estimates indicative only")
        row["notes"] = "; ".join(notes)
        rows_out.append(row)
    if not rows_out:
        return pd.DataFrame(columns=_frame_columns(metrics, sensitive_features, outer))
    frame = pd.DataFrame(rows_out)
    return frame[_frame_columns(metrics, sensitive_features, outer)]


def _frame_columns(metrics: Mapping[str, Metric], features: Sequence[str], outer: str | None) -> list[str]:
    out = ([outer] if outer else []) + ["grouping", "group", *features, "n"]
    for name, metric in metrics.items():
        out.append(name)
        if metric.interval == "wilson":
            out.append(f"{name}_events")
        if metric.interval != "none":
            out += [f"{name}_ci_low", f"{name}_ci_high"]
    return out + ["small_group", "status", "notes"]


def gini(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Gini coefficient of non-negative values along ``axis``: Σᵢ Σⱼ |xᵢ − xⱼ| / (2 k² x̄).

    0 when every group has the same value; NaN when the mean is not positive or a value is
    missing. Reference: Gini (1912); NIST IR 8525 uses it for the spread of a metric across
    demographic groups.
    """
    x = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    k = x.shape[-1]
    if k == 0:
        return np.full(x.shape[:-1], np.nan)
    mean = x.mean(axis=-1)
    pairwise = np.abs(x[..., :, None] - x[..., None, :]).sum(axis=(-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        result = pairwise / (2.0 * k * k * mean)
    return np.where(mean > 0, result, np.nan)


def spread(values: np.ndarray, axis: int = -1) -> dict[str, np.ndarray]:
    """``max_minus_min``, ``max_over_min`` and ``gini`` of group values along ``axis``."""
    x = np.asarray(values, dtype=float)
    high, low = np.max(x, axis=axis), np.min(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(low > 0, high / low, np.nan)
    return {"max_minus_min": high - low, "max_over_min": ratio, "gini": gini(x, axis=axis)}


SPREAD_COLUMNS = (
    "feature",
    "metric",
    "groups",
    "groups_left_out",
    "max_group",
    "max_value",
    "min_group",
    "min_value",
    "max_minus_min",
    "max_minus_min_ci_low",
    "max_minus_min_ci_high",
    "max_over_min",
    "gini",
    "gini_ci_low",
    "gini_ci_high",
    "status",
)


def spread_frame(
    table: pd.DataFrame,
    metrics: Mapping[str, Metric],
    features: Sequence[str],
    *,
    outer: str | None = None,
    where: str | None = None,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """How far apart the groups of each feature are, per metric: max − min, max / min, Gini.

    For each (outer value ×) feature × metric, the metric is computed per group of the feature
    (groups with fewer than ``min_n`` rows, or an undefined value, are left out and named in
    ``groups_left_out``); the spread of the group values gets a percentile-bootstrap interval
    from replicates in which each group's rows are resampled on their own (the same replicates,
    from the same seeds, as that group's interval in ``metric_frame``). Wilson-interval metrics
    are bootstrapped here too.

    Returns ``SPREAD_COLUMNS`` (led by ``outer`` when given); ``status`` is ``ok`` or says why
    no spread could be computed (fewer than two groups large enough).
    """
    rows_out = []
    selected = table[where].to_numpy(dtype=bool) if where is not None else None
    for feature in features:
        groups = [g for g in iter_groups(table, [feature], intersections=False, outer=outer) if g.grouping]
        by_outer: dict[object, list[Group]] = {}
        for group in groups:
            by_outer.setdefault(group.outer, []).append(group)
        if outer is not None and not by_outer:
            continue
        for outer_value, members in by_outer.items() if by_outer else [(None, [])]:
            for name, metric in metrics.items():
                kept, values, replicates, left_out = [], [], [], []
                for group in members:
                    rows = group.rows if selected is None else group.rows[selected[group.rows]]
                    arrays = [table[column].to_numpy(float)[rows] for column in metric.columns]
                    reason = metric.undefined(*arrays) if (metric.undefined and len(rows)) else None
                    value = float(metric.function(*arrays)) if len(rows) and not reason else float("nan")
                    if len(rows) < estimation.min_n or not np.isfinite(value):
                        left_out.append(f"{group.label} (n={len(rows)})")
                        continue
                    rng = row_seed(estimation.seed, group.outer, group.grouping_label, group.label, name)
                    strata = table[metric.strata].to_numpy()[rows] if metric.strata else None
                    kept.append(group.label)
                    values.append(value)
                    replicates.append(
                        bootstrap_replicates(arrays, metric.function, estimation.n_boot, rng, strata=strata)
                    )
                row: dict[str, object] = {} if outer is None else {outer: outer_value}
                row.update(
                    {"feature": feature, "metric": name, "groups": len(kept), "groups_left_out": ", ".join(left_out)}
                )
                if len(kept) < 2:
                    row["status"] = f"too_few_groups ({len(kept)} with n >= {estimation.min_n} and a defined {name})"
                    rows_out.append(row)
                    continue
                value_array = np.asarray(values)
                point = spread(value_array)
                boot = spread(np.vstack(replicates), axis=0)
                row.update(
                    {
                        "max_group": kept[int(np.argmax(value_array))],
                        "max_value": float(value_array.max()),
                        "min_group": kept[int(np.argmin(value_array))],
                        "min_value": float(value_array.min()),
                        "max_minus_min": float(point["max_minus_min"]),
                        "max_over_min": float(point["max_over_min"]),
                        "gini": float(point["gini"]),
                        "status": STATUS_OK,
                    }
                )
                row["max_minus_min_ci_low"], row["max_minus_min_ci_high"] = percentile_interval(
                    boot["max_minus_min"], estimation.confidence
                )
                row["gini_ci_low"], row["gini_ci_high"] = percentile_interval(boot["gini"], estimation.confidence)
                rows_out.append(row)
    columns = ([outer] if outer else []) + list(SPREAD_COLUMNS)
    return pd.DataFrame(rows_out, columns=columns) if rows_out else pd.DataFrame(columns=columns)

"""The report card: one screen that says, per group, how wrong the model is and how often the gate fails.

After NIST's FATE age-estimation report cards (NIST IR 8525): per demographic group the mean
absolute error and the key age-gate rates, each with its 95 % interval drawn as a whisker on a
scale shared by the column (so groups compare at a glance), the spread across groups (max − min
and Gini, from ``group_spread``), and the findings the stratified, Holm-corrected tests flag
(from ``significance_tests``). The comparison report's card puts the models side by side.

Everything here is numbers and their positions; the words around them are the templates'.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dex_bias.report import formats
from dex_bias.report.tables import Shown, metric_label, words

if TYPE_CHECKING:
    from dex_bias.report.comparison import ComparisonSettings


@dataclass(frozen=True)
class Whisker:
    """An estimate and its interval as positions on a 0–100 track; ``reference`` marks the overall value."""

    estimate: float
    low: float
    high: float
    reference: float | None
    label: str


@dataclass(frozen=True)
class CardColumn:
    """A measure of the card: its label, its unit and the upper end of its shared scale."""

    key: str
    label: str
    unit: str  # "years" or "percent"
    scale_max: float

    @property
    def scale_text(self) -> str:
        """The scale's range as the reader sees it (``0–8`` years, ``0–40`` %)."""
        end = 100 * self.scale_max if self.unit == "percent" else self.scale_max
        return f"0–{end:g}"


@dataclass(frozen=True)
class CardCell(Shown):
    """One group's value of one measure: the raw numbers, their text and whisker, and any flag.

    ``flag`` is ``"higher"`` or ``"lower"`` when a stratified test (Holm-corrected) finds this
    group differs from people of the same age (and gender) in this measure; ``None`` otherwise.
    """

    value: float
    low: float
    high: float
    n: int
    main: str
    interval: str
    whisker: Whisker | None
    flag: str | None = None
    small: bool = False


@dataclass(frozen=True)
class CardRow:
    """One group (``grouping`` "overall", "race", "gender" …) and its cells, one per card column."""

    grouping: str
    group: str
    n: int
    small: bool
    cells: list[CardCell]
    label: str = ""  # e.g. the model (comparison) or the outer group


@dataclass(frozen=True)
class SpreadLine:
    """The spread of one metric across the groups of one feature (``group_spread``)."""

    feature: str
    metric: str
    label: str
    model: str
    groups: int
    max_minus_min: str
    max_minus_min_interval: str
    gini: str
    gini_interval: str
    highest: str
    lowest: str
    value: float
    gini_value: float
    left_out: str = ""  # groups below the minimum n, not in the spread: "White (n=28), Black (n=29)"


@dataclass(frozen=True)
class FlaggedTest:
    """One test that flags a difference after Holm correction, with its numbers as text."""

    family: str
    feature: str
    outcome: str
    measure: str
    challenge_age: str
    group: str
    group_b: str
    difference: str
    interval: str
    p_corr: str
    family_size: int
    n: str
    direction: str  # "higher" or "lower"
    unit: str  # "years" or "points"


@dataclass(frozen=True)
class ReportCard:
    """The card of one document: columns, group rows, spread lines and flagged tests."""

    columns: list[CardColumn]
    rows: list[CardRow]
    spread: list[SpreadLine]
    flagged: list[FlaggedTest]
    tests_run: int
    alpha: float
    min_n: int
    models: list[str] = field(default_factory=list)

    def spread_by_model(self) -> list[tuple[str, str, list[SpreadLine | None]]]:
        """The spread lines as rows of (feature, metric label, one line per model or None)."""
        keys = list(dict.fromkeys((line.feature, line.label) for line in self.spread))
        found = {(line.feature, line.label, line.model): line for line in self.spread}
        return [
            (feature, label, [found.get((feature, label, model)) for model in self.models]) for feature, label in keys
        ]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above ``value`` (a scale's end); 1 for nothing."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = step * 10**exponent
        if candidate >= value * (1 - 1e-12):
            return float(candidate)
    return float(10 ** (exponent + 1))


def _position(value: float, scale_max: float) -> float:
    return max(0.0, min(100.0, 100.0 * value / scale_max))


def whisker(
    value: float, low: float, high: float, scale_max: float, reference: float | None, label: str
) -> Whisker | None:
    """The whisker of ``value`` in ``[low, high]`` on ``[0, scale_max]``; None when ``value`` is missing."""
    if formats.is_missing(value):
        return None
    low = value if formats.is_missing(low) else low
    high = value if formats.is_missing(high) else high
    return Whisker(
        estimate=_position(value, scale_max),
        low=_position(low, scale_max),
        high=_position(high, scale_max),
        reference=None if reference is None or formats.is_missing(reference) else _position(reference, scale_max),
        label=label,
    )


@dataclass(frozen=True)
class Measure:
    """Where a card column's numbers come from: a row selection of a table and its columns."""

    key: str
    label: str
    unit: str
    table: pd.DataFrame
    value: str
    low: str
    high: str

    @classmethod
    def mae(cls, key: str, label: str, table: pd.DataFrame) -> Measure:
        """MAE in years with its interval (a ``group_metrics`` table)."""
        return cls(key, label, "years", table, "mae", "mae_ci_low", "mae_ci_high")

    @classmethod
    def rate(cls, key: str, label: str, table: pd.DataFrame) -> Measure:
        """A gate rate in percent with its Wilson interval (a gates table)."""
        return cls(key, label, "percent", table, "rate", "ci_low", "ci_high")

    def lookup(self, grouping: str, group: str, **where: object) -> dict | None:
        """The table's row of ``grouping``/``group`` (and ``where``), as a dict; None if absent."""
        rows = self.table[(self.table["grouping"] == grouping) & (self.table["group"].astype(str) == str(group))]
        for column, value in where.items():
            rows = rows[rows[column] == value]
        return rows.iloc[0].to_dict() if len(rows) else None


def card_cell(
    row: dict | None, measure: Measure, scale_max: float, reference: float | None, flag: str | None, min_n: int
) -> CardCell:
    """One card cell from a statistics row (``None``: the group is not in that table)."""
    if row is None:
        return CardCell(math.nan, math.nan, math.nan, 0, formats.MISSING, "", None, None, False)
    value, low, high = (float(row.get(c, math.nan)) for c in (measure.value, measure.low, measure.high))
    n = int(row.get("n", 0) or 0)
    fmt = formats.years if measure.unit == "years" else formats.percent
    if formats.is_missing(value):
        main = "no cases" if str(row.get("status", "")).startswith("no_cases") or n == 0 else formats.MISSING
        bounds = ""
    else:
        main, bounds = formats.interval_parts(value, low, high, fmt)
    label = f"{measure.label}: {main} {bounds}".strip()
    return CardCell(
        value, low, high, n, main, bounds, whisker(value, low, high, scale_max, reference, label), flag, 0 < n < min_n
    )


def scale_for(values: Sequence[float]) -> float:
    """A shared scale's end: the nice ceiling of the largest finite value."""
    finite = [v for v in values if not formats.is_missing(v)]
    return nice_ceiling(max(finite)) if finite else 1.0


def spread_label(metric: str, parameters: str) -> str:
    """A spread line's metric: with the rate's short parameters ("true age 17 estimated at or above 25")."""
    if parameters and not metric_label(metric).endswith("(years)") and len(parameters) <= 45:
        return f"{words(metric)}: {parameters} (%)"
    return metric_label(metric)


def spread_lines(
    spread: pd.DataFrame, features: Sequence[str], metrics: Sequence[str], model_column: str | None = None
) -> list[SpreadLine]:
    """The computed spreads (status ok) of ``metrics`` across ``features``, in that order."""
    if spread is None or spread.empty:
        return []
    out = []
    ok = spread[spread["status"] == "ok"]
    models = list(dict.fromkeys(ok[model_column])) if model_column and model_column in ok else [""]
    for model in models:
        part = ok[ok[model_column] == model] if model else ok
        for feature in features:
            for metric in metrics:
                rows = part[(part["feature"] == feature) & (part["metric"] == metric)]
                for row in rows.to_dict("records"):
                    years = metric_label(metric).endswith("(years)")
                    fmt = formats.years if years else formats.percent
                    spread_main, spread_bounds = formats.interval_parts(
                        row["max_minus_min"], row["max_minus_min_ci_low"], row["max_minus_min_ci_high"], fmt
                    )
                    gini_main, gini_bounds = formats.interval_parts(
                        row["gini"], row["gini_ci_low"], row["gini_ci_high"], lambda v: formats.fixed(v, 3)
                    )
                    parameters = row.get("parameters") if isinstance(row.get("parameters"), str) else ""
                    out.append(
                        SpreadLine(
                            feature=feature,
                            metric=metric,
                            label=spread_label(metric, parameters),
                            model=str(model),
                            groups=int(row["groups"]),
                            max_minus_min=spread_main,
                            max_minus_min_interval=spread_bounds,
                            gini=gini_main,
                            gini_interval=gini_bounds,
                            highest=f"{row['max_group']} {fmt(row['max_value'])}",
                            lowest=f"{row['min_group']} {fmt(row['min_value'])}",
                            value=float(row["max_minus_min"]),
                            gini_value=float(row["gini"]),
                            left_out=row["groups_left_out"] if isinstance(row.get("groups_left_out"), str) else "",
                        )
                    )
    return out


def flagged_tests(tests: pd.DataFrame, alpha: float) -> list[FlaggedTest]:
    """Tests of a group against the others (errors and gate outcomes) that Holm leaves below ``alpha``.

    The omnibus and pairwise families are counted in the card's words, not listed: each flagged
    group already appears here against everyone else.
    """
    if tests is None or tests.empty:
        return []
    flagged = tests[
        (tests["status"] == "ok") & (tests["p_corr"] < alpha) & tests["family"].isin(["group_vs_rest", "gate_vs_rest"])
    ]
    # What a reader needs first: whose errors are larger (worst first), then whom the gate fails,
    # then who is estimated too old or too young (larger differences first).
    errors = flagged["outcome"] == "absolute_error"
    priority = np.select([errors, flagged["family"] == "gate_vs_rest"], [0, 1], 2)
    order = np.where(errors, -flagged["difference"], -flagged["difference"].abs())
    flagged = flagged.assign(_priority=priority, _order=order).sort_values(["_priority", "_order"], kind="stable")
    out = []
    for row in flagged.to_dict("records"):
        gate = row["family"] == "gate_vs_rest"
        fmt = formats.points if gate else formats.signed
        out.append(
            FlaggedTest(
                family=row["family"],
                feature=str(row["feature"]),
                outcome=str(row["outcome"]),
                measure=words(row.get("measure", "")) if gate else "",
                challenge_age=f"{row['challenge_age']:g}" if gate else "",
                group=str(row["group"]),
                group_b=str(row.get("group_b", "")),
                difference=fmt(row["difference"]),
                interval=f"{fmt(row['difference_ci_low'])} to {fmt(row['difference_ci_high'])}",
                p_corr=formats.p_phrase(row["p_corr"]),
                family_size=int(row["holm_family_size"]),
                n=f"{formats.count(row['n_used'])} vs {formats.count(row['n_b_used'])}",
                direction="higher" if row["difference"] > 0 else "lower",
                unit="points" if gate else "years",
            )
        )
    return out


def _flag(tests: pd.DataFrame, alpha: float, **where: object) -> str | None:
    if tests is None or tests.empty:
        return None
    rows = tests[(tests["status"] == "ok") & (tests["p_corr"] < alpha)]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    if rows.empty:
        return None
    return "higher" if float(rows.iloc[0]["difference"]) > 0 else "lower"


def audit_card(
    group_metrics: pd.DataFrame,
    gates: pd.DataFrame,
    spread: pd.DataFrame,
    tests: pd.DataFrame,
    *,
    features: Sequence[str],
    gate_columns: Sequence[tuple[str, float]],
    spread_features: Sequence[str],
    spread_metrics: Sequence[str],
    alpha: float,
    min_n: int,
) -> ReportCard:
    """The audit's card: MAE and ``gate_columns`` (measure, challenge age) per group of ``features``.

    Args:
        group_metrics: the audit-band rows of ``group_metrics`` (one population).
        gates: ``age_gate_metrics``.
        spread: ``group_spread``; its rows of ``spread_metrics`` across ``spread_features`` are shown
            where they could be computed.
        tests: ``significance_tests``; flags come from its ``group_vs_rest`` (absolute error) and
            ``gate_vs_rest`` rows with Holm-corrected p below ``alpha``.
        features: single features whose groups get a row (e.g. race, gender), after "overall".
        gate_columns: the gate rates shown, e.g. ``[("minors_accepted", 18), ("minors_accepted", 25)]``.
    """
    measures = [Measure.mae("mae", "MAE (years)", group_metrics)]
    for measure, age in gate_columns:
        subset = gates[(gates["measure"] == measure) & (gates["challenge_age"] == float(age))]
        if len(subset):
            measures.append(Measure.rate(f"{measure}@{age:g}", f"{words(measure).capitalize()} at {age:g} (%)", subset))
    groups = [("overall", "all")] + [
        (feature, str(group))
        for feature in features
        for group in group_metrics.loc[group_metrics["grouping"] == feature, "group"]
    ]
    columns, cells_by_measure = [], []
    for measure in measures:
        found = [measure.lookup(grouping, group) for grouping, group in groups]
        scale = scale_for(
            [float(r[measure.high]) for r in found if r is not None]
            + [float(r[measure.value]) for r in found if r is not None]
        )
        columns.append(CardColumn(measure.key, measure.label, measure.unit, scale))
        reference = found[0][measure.value] if found and found[0] is not None else None
        cells = []
        for (grouping, group), row in zip(groups, found):
            if grouping == "overall":
                flag = None
            elif measure.key == "mae":
                flag = _flag(
                    tests, alpha, family="group_vs_rest", outcome="absolute_error", feature=grouping, group=group
                )
            else:
                name, age = measure.key.split("@")
                flag = _flag(
                    tests,
                    alpha,
                    family="gate_vs_rest",
                    measure=name,
                    challenge_age=float(age),
                    feature=grouping,
                    group=group,
                )
            cells.append(card_cell(row, measure, scale, reference, flag, min_n))
        cells_by_measure.append(cells)
    rows = []
    for index, (grouping, group) in enumerate(groups):
        metric_row = measures[0].lookup(grouping, group)
        n = int(metric_row["n"]) if metric_row else 0
        rows.append(CardRow(grouping, group, n, 0 < n < min_n, [cells[index] for cells in cells_by_measure]))
    tests_run = int((tests["status"] == "ok").sum()) if tests is not None and len(tests) else 0
    return ReportCard(
        columns=columns,
        rows=rows,
        spread=spread_lines(spread, spread_features, spread_metrics),
        flagged=flagged_tests(tests, alpha),
        tests_run=tests_run,
        alpha=alpha,
        min_n=min_n,
    )


def comparison_card(
    metrics: pd.DataFrame,
    gates: pd.DataFrame,
    spread: pd.DataFrame,
    settings: ComparisonSettings,
) -> ReportCard:
    """The comparison's card: per group of ``features``, each model's MAE and gate rate side by side.

    Columns are measure × model; each measure's scale is shared by every model, so the whiskers
    of two models compare directly. Spread lines are each model's, from ``model_group_spread``.
    """
    features, gate_measure, challenge_age = settings.features, settings.gate_measure, settings.challenge_age
    min_n, alpha = settings.min_n, settings.alpha
    models = list(dict.fromkeys(metrics["model"]))
    gate_rows = gates[(gates["measure"] == gate_measure) & (gates["challenge_age"] == float(challenge_age))]
    measures = []
    for model in models:
        measures.append(Measure.mae(f"mae:{model}", f"{model}", metrics[metrics["model"] == model]))
    for model in models:
        measures.append(Measure.rate(f"gate:{model}", f"{model}", gate_rows[gate_rows["model"] == model]))
    groups = [("overall", "all")] + [
        (feature, str(group))
        for feature in features
        for group in dict.fromkeys(metrics.loc[metrics["grouping"] == feature, "group"])
    ]
    scales = {}
    for kind in ("mae", "gate"):
        values = []
        for measure in measures:
            if measure.key.startswith(kind):
                for grouping, group in groups:
                    row = measure.lookup(grouping, group)
                    if row is not None:
                        values += [float(row[measure.value]), float(row[measure.high])]
        scales[kind] = scale_for(values)
    columns, per_measure = [], []
    for measure in measures:
        kind = measure.key.split(":")[0]
        columns.append(CardColumn(measure.key, measure.label, measure.unit, scales[kind]))
        overall = measure.lookup("overall", "all")
        reference = overall[measure.value] if overall else None
        per_measure.append(
            [
                card_cell(measure.lookup(grouping, group), measure, scales[kind], reference, None, min_n)
                for grouping, group in groups
            ]
        )
    rows = []
    for index, (grouping, group) in enumerate(groups):
        counts = [cells[index].n for cells, m in zip(per_measure, measures) if m.key.startswith("mae")]
        n = max(counts) if counts else 0
        rows.append(CardRow(grouping, group, n, 0 < n < min_n, [cells[index] for cells in per_measure]))
    gate_metric = f"{gate_measure} at {challenge_age:g}"
    return ReportCard(
        columns=columns,
        rows=rows,
        spread=spread_lines(spread, features, ["mae", gate_metric], model_column="model"),
        flagged=[],
        tests_run=0,
        alpha=alpha,
        min_n=min_n,
        models=[str(m) for m in models],
    )

"""The model-comparison report: several models on the same faces, side by side, in plain words.

Figures (matplotlib object API), and the context of one self-contained HTML document drawn by
the audit report's own template machinery (``templates/comparison_report.html.j2`` extends the
same base): a report card first (each model's MAE and gate rate per group with interval
whiskers, each model's spread across groups, what the paired tests show), the findings (which
model is more accurate, which is fairer by which measure), then the models' declarations, the
leaderboard, the per-group metrics and gate rates side by side, the paired tests, and where
explanations exist, which facial regions each model leans on per group.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from dex_bias.models.registry import ModelsSettings
from dex_bias.report import formats
from dex_bias.report import tables as t
from dex_bias.report.card import ReportCard, comparison_card
from dex_bias.report.figures import PALETTE
from dex_bias.report.findings import Estimate, Rate
from dex_bias.report.html import image_data_uri, render


def _models(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["model"]))


def _model_bars(
    rows: pd.DataFrame,
    models: list[str],
    estimate: str,
    low: str,
    high: str,
    *,
    scale: float,
    ylabel: str,
    title: str,
    height: float,
) -> Figure:
    """Grouped bars: for each group (x), each model's ``estimate`` with its ``[low, high]`` interval."""
    groups = list(dict.fromkeys(rows["group"]))
    figure = Figure(figsize=(max(5.5, 1.2 * len(groups) + 2), height), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(models), 1)
    for index, model in enumerate(models):
        part = rows[rows["model"] == model].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (index - (len(models) - 1) / 2) * width
        value = scale * part[estimate]
        errors = np.vstack(
            [(value - scale * part[low]).clip(lower=0).fillna(0), (scale * part[high] - value).clip(lower=0).fillna(0)]
        )
        axes.bar(
            x,
            value,
            width,
            color=PALETTE[index % len(PALETTE)],
            label=model,
            yerr=errors,
            capsize=3,
            error_kw={"linewidth": 1},
        )
    axes.set_xticks(np.arange(len(groups)), groups, rotation=20 if len(groups) > 4 else 0)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def metric_by_group_figure(
    metrics: pd.DataFrame, feature: str, metric: str = "mae", label: str = "mean absolute error (years)"
) -> Figure:
    """Per group of ``feature``: each model's ``metric`` with its bootstrap interval, side by side."""
    return _model_bars(
        metrics[metrics["grouping"] == feature],
        _models(metrics),
        metric,
        f"{metric}_ci_low",
        f"{metric}_ci_high",
        scale=1.0,
        ylabel=label,
        height=3.6,
        title=f"{label.split(' (')[0]} by {feature}, per model (95% bootstrap intervals)",
    )


def gate_by_group_figure(gates: pd.DataFrame, feature: str, measure: str, challenge_age: float) -> Figure:
    """Per group of ``feature``: each model's gate rate (``measure`` at ``challenge_age``) with Wilson intervals."""
    rows = gates[
        (gates["grouping"] == feature)
        & (gates["measure"] == measure)
        & (gates["challenge_age"] == float(challenge_age))
        & (gates["n"] > 0)
    ]
    return _model_bars(
        rows,
        _models(gates),
        "rate",
        "ci_low",
        "ci_high",
        scale=100.0,
        ylabel="%",
        height=3.4,
        title=f"{measure.replace('_', ' ')} at challenge age {challenge_age:g}, per model (95% Wilson intervals)",
    )


def region_attention_figure(attention: pd.DataFrame) -> Figure:
    """Mean LIME weight (years) of each facial region per model (rows) and race (panels)."""
    races = list(dict.fromkeys(attention["race"]))
    models = _models(attention)
    regions = [r for r in dict.fromkeys(attention["region"]) if r != "background"]
    figure = Figure(figsize=(min(18, 3.2 * len(races) + 1.5), 0.5 * len(models) + 3.0), layout="constrained")
    axes_row = figure.subplots(1, len(races), sharey=True, squeeze=False)[0]
    scale = float(np.nanmax(np.abs(attention["mean_weight"]))) if len(attention) else 1.0
    image = None
    for axes, race in zip(axes_row, races):
        grid = (
            attention[attention["race"] == race]
            .pivot_table(index="model", columns="region", values="mean_weight", observed=True)
            .reindex(index=models, columns=regions)
        )
        image = axes.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto")
        axes.set_title(race, fontsize=9)
        axes.set_xticks(range(len(regions)), [r.replace("_", " ") for r in regions], rotation=90, fontsize=7)
        axes.set_yticks(range(len(models)), models, fontsize=8)
    if image is not None:
        figure.colorbar(image, ax=list(axes_row), shrink=0.8, label="mean LIME weight (years of expected age)")
    figure.suptitle("Which facial regions each model's estimate leans on, by race", fontsize=10)
    return figure


@dataclass(frozen=True)
class ModelMae:
    """One model's overall MAE and its bootstrap interval (years)."""

    model: str
    mae: Estimate


@dataclass(frozen=True)
class MostAccurate:
    """How many models, on how many faces, and each one's MAE, most accurate first."""

    n_models: int
    n_faces: int
    ranked: list[ModelMae]
    kind: ClassVar[str] = "most_accurate"


@dataclass(frozen=True)
class ModelSpread:
    """One model's spread of group MAE across a feature's groups: range with interval, Gini, worst group."""

    model: str
    range: Estimate
    gini: float
    worst_group: str


@dataclass(frozen=True)
class FairestAcross:
    """The model whose group MAEs spread least across ``feature``, and every model's spread, smallest first."""

    feature: str
    ranked: list[ModelSpread]
    kind: ClassVar[str] = "fairest_across"


@dataclass(frozen=True)
class GateSpread:
    """Each model's range across ``feature`` groups of the leaderboard's gate rate, smallest first."""

    feature: str
    measure: str
    challenge_age: float
    ranked: list[tuple[str, float]]
    kind: ClassVar[str] = "gate_spread"


@dataclass(frozen=True)
class ModelRate:
    """One model's overall gate rate with its Wilson interval and n."""

    model: str
    rate: Rate


@dataclass(frozen=True)
class OverallGate:
    """The leaderboard's gate rate overall, per model."""

    measure: str
    challenge_age: float
    rates: list[ModelRate]
    kind: ClassVar[str] = "overall_gate"


@dataclass(frozen=True)
class PairedOverall:
    """Two models on the same faces: the mean paired difference in absolute error, rank-biserial, p."""

    model_a: str
    model_b: str
    difference: Estimate
    rank_biserial: float
    p_corr: float
    verdict: str
    kind: ClassVar[str] = "paired_overall"


@dataclass(frozen=True)
class PairedGroups:
    """Two models per group: the groups where Holm leaves a difference, by verdict, and the others' count."""

    model_a: str
    model_b: str
    alpha: float
    by_verdict: list[tuple[str, list[str]]]
    not_shown: int
    tested: int
    kind: ClassVar[str] = "paired_groups"


ComparisonFinding = MostAccurate | FairestAcross | GateSpread | OverallGate | PairedOverall | PairedGroups


def comparison_findings(
    leaderboard: pd.DataFrame,
    metrics: pd.DataFrame,
    gates: pd.DataFrame,
    paired: pd.DataFrame,
    settings: ComparisonSettings,
) -> list[ComparisonFinding]:
    """The comparison's findings as records: who is more accurate, who is fairer by which measure,
    the leaderboard's gate rate per model, and what the paired tests show (overall and per group)."""
    features, gate_measure, challenge_age, alpha = (
        settings.features,
        settings.gate_measure,
        settings.challenge_age,
        settings.alpha,
    )
    out: list[ComparisonFinding] = []
    board = leaderboard.set_index("model")
    out.append(
        MostAccurate(
            len(leaderboard),
            int(leaderboard.iloc[0]["n"]),
            [ModelMae(str(row["model"]), Estimate.of(row, "mae")) for _, row in leaderboard.iterrows()],
        )
    )
    for feature in features:
        column = f"{feature}_mae_range"
        if column not in board or board[column].isna().all():
            continue
        ranked = board[column].dropna().sort_values()
        out.append(
            FairestAcross(
                feature,
                [
                    ModelSpread(
                        str(model),
                        Estimate.of(board.loc[model], column),
                        float(board.loc[model, f"{feature}_mae_gini"]),
                        str(board.loc[model, f"{feature}_mae_worst_group"]),
                    )
                    for model in ranked.index
                ],
            )
        )
        gate_column = f"{feature}_gate_range"
        if gate_column in board and board[gate_column].notna().any():
            gate_ranked = board[gate_column].dropna().sort_values()
            out.append(
                GateSpread(
                    feature,
                    gate_measure,
                    float(challenge_age),
                    [(str(model), float(value)) for model, value in gate_ranked.items()],
                )
            )
    overall_gate = gates[
        (gates["grouping"] == "overall")
        & (gates["measure"] == gate_measure)
        & (gates["challenge_age"] == float(challenge_age))
        & (gates["n"] > 0)
    ]
    if len(overall_gate):
        out.append(
            OverallGate(
                gate_measure,
                float(challenge_age),
                [ModelRate(str(row["model"]), Rate.of(row)) for _, row in overall_gate.iterrows()],
            )
        )
    tested = paired[paired["status"] == "ok"]
    for (model_a, model_b), rows in tested.groupby(["model_a", "model_b"], sort=False):
        shown = rows[rows["p_corr"] < alpha]
        overall = rows[rows["grouping"] == "overall"]
        if len(overall):
            o = overall.iloc[0]
            out.append(
                PairedOverall(
                    str(model_a),
                    str(model_b),
                    Estimate.of(o, "mean_difference"),
                    float(o["rank_biserial"]),
                    float(o["p_corr"]),
                    str(o["verdict"]),
                )
            )
        groups = shown[shown["grouping"] != "overall"]
        if len(groups):
            by_verdict = [
                (str(verdict), [str(g) for g in part["group"]])
                for verdict, part in groups.groupby("verdict", sort=True)
            ]
            out.append(PairedGroups(str(model_a), str(model_b), alpha, by_verdict, len(rows) - len(shown), len(rows)))
    return out


def model_declarations(models: Sequence[str], models_params: ModelsSettings) -> pd.DataFrame:
    """One row per compared model: what its declaration says it takes and gives, and where it came from.

    Columns ``model``, ``format``, ``file``, ``sha256`` (first 16 hex digits), ``input``, ``age output``,
    ``gender``, ``source``, ``licence``, ``trained_on``; the model trained here has only ``source``.
    """
    from dex_bias.models.registry import TRAINED, declared_models

    declared = declared_models(models_params)
    rows = []
    for model in models:
        if model == TRAINED:
            rows.append({"model": model, "source": "trained by this project's train pipeline (age_model)"})
            continue
        summary = declared[model].summary()
        given, gender = summary["input"], summary["gender"]
        rows.append(
            {
                "model": model,
                "format": summary["format"],
                "file": summary["file"],
                "sha256": (summary["sha256"] or "")[:16],
                "input": f"{given['size']} px {given['channel_order']} {given['layout']}, {given['crop']}",
                "age output": summary["age"]["classes"],
                "gender": "none" if gender is None else f"column {gender['female_column']} = female",
                **{key: declared[model].provenance.get(key, "") for key in ("source", "licence", "trained_on")},
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ComparisonTables:
    """The compare pipeline's tables the comparison report reads (catalog names without ``model_``)."""

    coverage: pd.DataFrame
    leaderboard: pd.DataFrame
    spread: pd.DataFrame
    metrics: pd.DataFrame
    gates: pd.DataFrame
    paired: pd.DataFrame
    attention: pd.DataFrame
    declarations: pd.DataFrame


@dataclass(frozen=True)
class ComparisonSettings:
    """The parameters the comparison's card and words depend on."""

    features: tuple[str, ...]
    gate_measure: str
    challenge_age: float
    alpha: float
    confidence: float
    min_n: int


@dataclass(frozen=True)
class ComparisonReport:
    """Everything the comparison template shows: numbers, tables and figures, no prose."""

    made: str
    models: list[str]
    n_faces: int
    settings: ComparisonSettings
    card: ReportCard
    findings: list[ComparisonFinding]
    tables: dict[str, t.DisplayTable]
    figures: dict[str, str]
    region_attention: bool

    @property
    def gate_label(self) -> str:
        """The leaderboard's gate rate in words ("minors accepted at 25")."""
        return f"{t.words(self.settings.gate_measure)} at {self.settings.challenge_age:g}"


def leaderboard_display(leaderboard: pd.DataFrame, features: Sequence[str], gate_label: str) -> t.DisplayTable:
    """The leaderboard as a person writes it: rank, model, MAE, and per feature one cell each for the
    spread of group MAE and of the gate rate ("0.39 (0.22–0.97); Gini 0.023; worst Asian")."""
    frame = leaderboard.copy()
    frame.insert(0, "rank", range(1, len(frame) + 1))
    columns = [
        t.Column("Rank", "rank", "count"),
        *t.MODEL,
        t.Column("n", "n", "count"),
        t.Column("MAE (years)", "mae", "years", interval=True),
        t.Column("Mean signed error (years)", "mean_signed_error", "signed_years"),
    ]
    for feature in features:
        for kind, label, fmt in (
            ("mae", f"MAE spread across {t.words(feature)} (years)", formats.years),
            (
                "gate",
                f"{gate_label.capitalize()}: spread across {t.words(feature)} (percentage points)",
                formats.percent,
            ),
        ):
            base = f"{feature}_{kind}"
            if f"{base}_range" not in frame.columns:
                continue
            frame[f"{base}_display"] = [
                formats.MISSING
                if formats.is_missing(row[f"{base}_range"])
                else formats.interval(
                    row[f"{base}_range"], row[f"{base}_range_ci_low"], row[f"{base}_range_ci_high"], fmt
                )
                + f"; Gini {formats.fixed(row[f'{base}_gini'], 3)}; worst {row[f'{base}_worst_group']}"
                for _, row in frame.iterrows()
            ]
            columns.append(
                t.Column(
                    label,
                    f"{base}_display",
                    title="max − min across groups (95% bootstrap interval); Gini; the worst group",
                )
            )
    return t.display_table("model_leaderboard", frame, columns, csv=leaderboard, collapsed=False, group_by=None)


def comparison_report_context(
    tables: ComparisonTables,
    figures: Sequence[Image.Image | None],
    settings: ComparisonSettings,
    *,
    made: dt.datetime | None = None,
) -> ComparisonReport:
    """The comparison report's context: card, findings as records, display tables and figures.

    Args:
        tables: the compare pipeline's tables and the models' declarations.
        figures: MAE by race per model, the gate rate by race per model, and the region-weight
            figure (None where no model has explanations).
        settings: the features compared, the leaderboard's gate, alpha, confidence, minimum n.
        made: when the report was made (default: now, UTC).
    """
    made = made or dt.datetime.now(dt.UTC)
    features = list(settings.features)
    findings = comparison_findings(tables.leaderboard, tables.metrics, tables.gates, tables.paired, settings)
    card = comparison_card(tables.metrics, tables.gates, tables.spread, settings)
    gate_label = f"{t.words(settings.gate_measure)} at {settings.challenge_age:g}"
    display = {
        "declarations": t.transposed_table("model_declarations", tables.declarations, "model", t.DECLARATION_LABELS),
        "coverage": t.display_table(
            "model_coverage", tables.coverage, t.COVERAGE_COLUMNS, collapsed=False, group_by=None
        ),
        "leaderboard": leaderboard_display(tables.leaderboard, features, gate_label),
        "spread": t.display_table(
            "model_group_spread", tables.spread, t.SPREAD_COLUMNS, show=t.spread_display, group_by="feature"
        ),
        "metrics": t.display_table(
            "model_comparison_metrics",
            tables.metrics,
            t.group_metric_columns(tables.metrics),
            show=t.with_note,
            collapsed=True,
            group_by="model",
        ),
        "gates": t.display_table(
            "model_comparison_gates", tables.gates, t.GATE_COLUMNS, collapsed=True, group_by="model"
        ),
        "paired": t.display_table(
            "model_paired_tests", tables.paired, t.PAIRED_COLUMNS, show=t.paired_display, collapsed=False
        ),
        "attention": t.display_table(
            "model_region_attention", tables.attention, t.ATTENTION_COLUMNS, collapsed=True, group_by="model"
        ),
    }
    names = ("mae", "gates", "regions")
    return ComparisonReport(
        made=f"{made:%Y-%m-%d %H:%M} UTC",
        models=[str(m) for m in tables.leaderboard["model"]],
        n_faces=int(tables.leaderboard["n"].max()) if len(tables.leaderboard) else 0,
        settings=settings,
        card=card,
        findings=findings,
        tables=display,
        figures={name: image_data_uri(image) for name, image in zip(names, figures) if image is not None},
        region_attention=not tables.attention.empty,
    )


def render_comparison_report(report: ComparisonReport) -> str:
    """The self-contained HTML comparison of the audited models."""
    return render("comparison_report.html.j2", report)

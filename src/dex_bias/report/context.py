"""What the audit report shows, built from the report pipeline's tables: a small typed context.

:func:`audit_report_context` turns the statistics tables and figures of one audit into an
:class:`AuditReport`: the report card, the findings as records, display tables (human headers,
estimates with their intervals, each with its CSV) and figures as data URIs, plus the facts the
template's words depend on (were landmarks there, attributions, a gender head, a quarantine).
:func:`render_audit_report` writes it through ``templates/audit_report.html.j2``. No Kedro
here: the report node only gathers its inputs and calls these two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from PIL import Image

from dex_bias.report import tables as t
from dex_bias.report.card import ReportCard, audit_card
from dex_bias.report.findings import Finding, SmallGroup, audit_findings, small_groups
from dex_bias.report.html import image_data_uri, render
from dex_bias.report.settings import ReportSettings

#: The spreads across groups the card states (those the statistics could compute).
CARD_SPREAD_METRICS = ("mae", "balanced_mae", "challenge_false_positive", "verification_minors_pass")


@dataclass(frozen=True)
class AuditTables:
    """The report pipeline's tables one audit report reads (names as in the catalog)."""

    predictions: pd.DataFrame
    quarantine: pd.DataFrame
    landmarks: pd.DataFrame
    group_metrics: pd.DataFrame
    significance_tests: pd.DataFrame
    age_gate_metrics: pd.DataFrame
    challenge_age_buffers: pd.DataFrame
    age_verification_metrics: pd.DataFrame
    group_spread: pd.DataFrame
    image_quality_metrics: pd.DataFrame
    paper_normality_table: pd.DataFrame
    paper_correlation_table: pd.DataFrame
    region_weight_correlations: pd.DataFrame


@dataclass(frozen=True)
class AuditFigures:
    """The report pipeline's figures (PIL images), in the order the report shows them."""

    predicted_vs_true: Image.Image
    age_gates: Image.Image
    error_by_race: Image.Image
    error_by_gender: Image.Image
    attribution_heatmap: Image.Image


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit template shows: numbers, tables and figures, no prose."""

    made: str
    n_predictions: int
    models: list[str]
    set_aside: int
    settings: ReportSettings
    cards: list[tuple[str, ReportCard]]
    findings: list[Finding]
    small_groups: list[SmallGroup]
    tables: dict[str, t.DisplayTable]
    figures: dict[str, str]
    image_quality_measured: bool
    article_explanations: bool
    region_attributions: bool
    gender_head: bool

    @property
    def no_faces(self) -> bool:
        """Nothing was audited (the findings say so; the card is empty)."""
        return not self.cards


def not_computed(**tables: pd.DataFrame) -> pd.DataFrame:
    """One row per table × status that is not a result (``table``, ``status``, ``rows``, ``example``).

    Statuses that only qualify a result (``ok``, ``small_group``) are not listed; everything else
    (``no_cases``, ``too_small …``, ``too_few_groups …``, ``no_variation``, ``undefined``,
    ``no_minors``, ``k2 not computed …``) is, so the report says what could not be computed.
    """
    rows = []
    for name, table in tables.items():
        if table is None or table.empty or "status" not in table.columns:
            continue
        status = table["status"].astype(str)
        kind = status.str.split(r" \(|;", regex=True).str[0].str.strip()
        shown = ~kind.isin(["ok", "small_group", ""])
        for reason, part in table[shown].groupby(kind[shown], sort=True):
            label_columns = [
                c for c in ("grouping", "group", "feature", "race", "gender", "age_band", "metric") if c in part.columns
            ]
            example = " / ".join(str(part.iloc[0][c]) for c in label_columns if str(part.iloc[0][c]) not in ("", "nan"))
            rows.append(
                {"table": name, "status": reason, "rows": len(part), "example": f"{example}: {part.iloc[0]['status']}"}
            )
    return pd.DataFrame(rows, columns=["table", "status", "rows", "example"])


def gender_table(predictions: pd.DataFrame, settings: ReportSettings) -> pd.DataFrame | None:
    """The gender head's accuracy (``dex_bias.stats.gender``), or None when ``prob_female`` is empty."""
    if "prob_female" not in predictions.columns or predictions["prob_female"].isna().all():
        return None
    from dex_bias.stats.engine import Estimation
    from dex_bias.stats.gender import gender_metrics

    return gender_metrics(predictions, estimation=Estimation(bands=settings.age_bands, min_n=settings.min_n))


def _card_gates(challenge_ages: Sequence[float]) -> list[tuple[str, float]]:
    """The gate rates on the card: minors accepted at the lowest and the highest challenge age, and
    adults refused at the lowest (the legal age): both kinds of gate error side by side."""
    if not challenge_ages:
        return []
    low, high = min(challenge_ages), max(challenge_ages)
    wanted = [("minors_accepted", low), ("minors_accepted", high), ("adults_refused", low)]
    return list(dict.fromkeys(wanted))


def _lead(outer: str | None) -> list[t.Column]:
    return [t.Column(t.words(outer).capitalize(), outer)] if outer else []


def _display_tables(
    tables: AuditTables,
    settings: ReportSettings,
    audit_metrics: pd.DataFrame,
    gender: pd.DataFrame | None,
    outer: str | None,
) -> dict[str, t.DisplayTable]:
    lead = _lead(outer)
    single = ~audit_metrics["grouping"].str.contains("×")
    main = audit_metrics[single]
    metrics_rest = tables.group_metrics.drop(main.index)
    columns = lead + t.group_metric_columns(tables.group_metrics)
    tests = tables.significance_tests

    def catalog_table(
        name: str, columns: list[t.Column], group_by: str, show: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    ) -> t.DisplayTable:
        """The table of :class:`AuditTables` called ``name``, all its rows, its CSV under that name."""
        return t.display_table(name, getattr(tables, name), columns, show=show, group_by=group_by)

    out = {
        "group_metrics": t.display_table(
            "group_metrics", main, [c for c in columns if c.source != "band_scheme"], show=t.with_note, collapsed=False
        ),
        "group_metrics_more": t.display_table(
            "group_metrics_intersections_and_article_bands", metrics_rest, columns, show=t.with_note, collapsed=True
        ),
    }
    for family, family_columns in t.TEST_FAMILY_COLUMNS.items():
        out[f"tests_{family}"] = t.display_table(
            f"significance_tests_{family}",
            tests[tests["family"] == family],
            lead + family_columns,
            show=t.tests_display,
            group_by="feature",
        )
    out |= {
        "verification": catalog_table(
            "age_verification_metrics", lead + t.VERIFICATION_COLUMNS, "parameters", t.with_note
        ),
        "spread": catalog_table("group_spread", lead + t.SPREAD_COLUMNS, "metric", t.spread_display),
        "buffers": catalog_table("challenge_age_buffers", t.BUFFER_COLUMNS, "target_rate", t.buffers_display),
        "gates": catalog_table("age_gate_metrics", lead + t.GATE_COLUMNS, "measure"),
        "quality_bins": catalog_table("image_quality_metrics", t.QUALITY_COLUMNS, "bin"),
        "appendix_a": catalog_table("paper_normality_table", t.NORMALITY_COLUMNS, "race"),
        "appendix_b": catalog_table("paper_correlation_table", t.ARTICLE_CORRELATION_COLUMNS, "race"),
        "region_weights": catalog_table("region_weight_correlations", t.REGION_CORRELATION_COLUMNS, "race"),
    }
    if tables.image_quality_metrics is not None and not tables.image_quality_metrics.empty:
        from dex_bias.stats.quality import quality_summary

        summary = quality_summary(tables.predictions, tables.landmarks, by=list(settings.gate_features))
        out["quality_summary"] = t.display_table(
            "image_quality_by_group", summary, t.QUALITY_SUMMARY_COLUMNS, collapsed=False
        )
    if gender is not None and not gender.empty:
        crossed = gender["grouping"].str.contains("×")
        out["gender"] = t.display_table("gender_metrics", gender[~crossed], t.GENDER_COLUMNS, collapsed=False)
        out["gender_more"] = t.display_table(
            "gender_metrics_by_intersection", gender[crossed], t.GENDER_COLUMNS, collapsed=True
        )
    missing = not_computed(
        group_metrics=audit_metrics,
        significance_tests=tests,
        age_gate_metrics=tables.age_gate_metrics,
        age_verification_metrics=tables.age_verification_metrics,
        group_spread=tables.group_spread,
        paper_normality_table=tables.paper_normality_table,
    )
    if not missing.empty:
        out["not_computed"] = t.display_table(
            "not_computed",
            missing,
            t.NOT_COMPUTED_COLUMNS,
            show=t.not_computed_display,
            collapsed=False,
            group_by="table",
        )
    if len(tables.quarantine):
        out["quarantine"] = t.display_table(
            "report_input_quarantine", tables.quarantine, t.QUARANTINE_COLUMNS, group_by=None
        )
    return out


def _cards(
    tables: AuditTables, audit_metrics: pd.DataFrame, settings: ReportSettings, outer: str | None
) -> list[tuple[str, ReportCard]]:
    features = [f for f in dict.fromkeys([*settings.test_features, *settings.gate_features]) if "×" not in f]
    spread_features = list(settings.spread_features)
    gate_columns = _card_gates(settings.challenge_ages)

    def card(metrics, gates, spread, tests) -> ReportCard:
        return audit_card(
            metrics,
            gates,
            spread,
            tests,
            features=features,
            gate_columns=gate_columns,
            spread_features=spread_features,
            spread_metrics=CARD_SPREAD_METRICS,
            alpha=settings.alpha,
            min_n=settings.min_n,
        )

    overall = audit_metrics[audit_metrics["grouping"] == "overall"]
    if overall.empty or int(overall["n"].max()) == 0:
        return []
    if outer is None:
        return [("", card(audit_metrics, tables.age_gate_metrics, tables.group_spread, tables.significance_tests))]

    def part(frame: pd.DataFrame, value: object) -> pd.DataFrame:
        return frame[frame[outer] == value] if frame is not None and outer in frame.columns else frame

    return [
        (
            str(value),
            card(
                part(audit_metrics, value),
                part(tables.age_gate_metrics, value),
                part(tables.group_spread, value),
                part(tables.significance_tests, value),
            ),
        )
        for value in dict.fromkeys(overall[outer])
    ]


def audit_report_context(
    tables: AuditTables, figures: AuditFigures, settings: ReportSettings, *, made: dt.datetime | None = None
) -> AuditReport:
    """The audit report's context: card, findings, display tables, figures and the facts its words need.

    Args:
        tables: the report pipeline's tables (``group_metrics`` with both band schemes).
        figures: the report pipeline's figures.
        settings: the report parameters the words and the card use.
        made: when the report was made (default: now, UTC).
    """
    made = made or dt.datetime.now(dt.UTC)
    outer = settings.outer_grouping if settings.outer_grouping in tables.group_metrics.columns else None
    metrics = tables.group_metrics
    audit_metrics = metrics[metrics["band_scheme"] == "audit"] if "band_scheme" in metrics.columns else metrics
    predictions = tables.predictions
    models = sorted(predictions["model_name"].astype(str).unique()) if "model_name" in predictions else []
    gender = gender_table(predictions, settings)
    findings = audit_findings(
        audit_metrics,
        tables.significance_tests,
        tables.age_gate_metrics,
        tables.challenge_age_buffers,
        alpha=settings.alpha,
        verification=tables.age_verification_metrics,
        stratum_years=settings.tests.stratum_years,
    )
    return AuditReport(
        made=f"{made:%Y-%m-%d %H:%M} UTC",
        n_predictions=len(predictions),
        models=models,
        set_aside=int(tables.quarantine["row"].nunique()) if len(tables.quarantine) else 0,
        settings=settings,
        cards=_cards(tables, audit_metrics, settings, outer),
        findings=findings,
        small_groups=small_groups(audit_metrics[~audit_metrics["grouping"].str.contains("×")]),
        tables=_display_tables(tables, settings, audit_metrics, gender, outer),
        figures={name: image_data_uri(getattr(figures, name)) for name in AuditFigures.__dataclass_fields__},
        image_quality_measured=tables.image_quality_metrics is not None and not tables.image_quality_metrics.empty,
        article_explanations=not tables.paper_correlation_table.empty,
        region_attributions=not tables.region_weight_correlations.empty,
        gender_head=gender is not None and not gender.empty,
    )


def render_audit_report(report: AuditReport) -> str:
    """The self-contained HTML audit report of ``report``."""
    return render("audit_report.html.j2", report)

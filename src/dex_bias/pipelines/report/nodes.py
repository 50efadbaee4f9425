"""Nodes of the report pipeline: thin wrappers over ``dex_bias.stats`` and ``dex_bias.report``."""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
from PIL import Image

from dex_bias.report import figures
from dex_bias.report.context import (
    AuditFigures,
    AuditTables,
    audit_report_context,
    render_audit_report,
)
from dex_bias.report.settings import ReportSettings
from dex_bias.stats.contract import audited_splits, prepare_predictions
from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers
from dex_bias.stats.metrics import group_metrics
from dex_bias.stats.paper import paper_correlation_table, paper_normality_table, region_weight_correlations
from dex_bias.stats.quality import quality_metrics
from dex_bias.stats.significance import significance_tests
from dex_bias.stats.verification import age_verification_metrics, group_spread

logger = logging.getLogger(__name__)


def _outer(params: ReportSettings, predictions: pd.DataFrame) -> str | None:
    """The outer grouping column (e.g. ``model_name``) when set and present, else None."""
    column = params.outer_grouping
    if column and column not in predictions.columns:
        logger.warning("report.outer_grouping is %r but the predictions have no such column: tabled as one", column)
        return None
    return column or None


def prepare_report_input(predictions: pd.DataFrame, params: ReportSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check ``predictions`` against the input contract and keep the audited splits.

    Returns the audited rows and the quarantine (empty unless ``input.allow_quarantine``).
    Rows of other splits (e.g. the training split, on which the model looks better than it is)
    are left out, counted and logged; a table without ``split`` is audited whole.
    """
    source = predictions.attrs.get("source", "predictions")
    valid, quarantine = prepare_predictions(
        predictions,
        allow_quarantine=params.input.allow_quarantine,
        source=source,
        age_range=params.input.predicted_age_range,
        age_range_setting="report.input.predicted_age_range",
    )
    if valid.empty:
        logger.warning("%s: no rows to audit; the report says what could not be computed", source)
    return audited_splits(valid, params.input.splits, source=source, setting="report.input.splits"), quarantine


def compute_group_metrics(predictions: pd.DataFrame, params: ReportSettings) -> pd.DataFrame:
    """Metric table for the audit bands and, for the age-band groupings, the article's bands."""
    common = dict(
        sensitive_features=params.sensitive_features,
        intersections=params.intersections,
        accuracy_within=params.accuracy_within,
        outer=_outer(params, predictions),
        balanced_bands=params.balanced_mae_bands,
    )
    audit = group_metrics(predictions, estimation=params.estimation, **common)
    article = group_metrics(predictions, estimation=replace(params.estimation, bands=params.paper_age_bands), **common)
    article = article[article["grouping"].str.contains("age_band")]
    return pd.concat([audit.assign(band_scheme="audit"), article.assign(band_scheme="article")], ignore_index=True)


def compute_significance_tests(predictions: pd.DataFrame, params: ReportSettings) -> pd.DataFrame:
    """Stratified permutation tests across races and genders (see ``dex_bias.stats.significance``)."""
    tests = params.tests
    return significance_tests(
        predictions,
        features=params.test_features,
        outcomes=tests.outcomes,
        challenge_ages=params.challenge_ages,
        stratum_years=tests.stratum_years,
        gate_stratum_years=tests.gate_stratum_years,
        pairwise=tests.pairwise,
        n_perm=tests.n_perm,
        estimation=replace(params.estimation, min_n=tests.min_n, seed=tests.seed),
        alpha=params.alpha,
        outer=_outer(params, predictions),
    )


def compute_age_gates(predictions: pd.DataFrame, params: ReportSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Challenge-age rates per group with Wilson CIs, and the buffer each group needs."""
    rates = age_gate_metrics(
        predictions,
        challenge_ages=params.challenge_ages,
        by=params.gate_features,
        intersections=params.intersections,
        estimation=params.estimation,
        outer=_outer(params, predictions),
    )
    buffers = challenge_age_buffers(
        predictions, by=params.gate_features, targets=params.buffer_targets, estimation=params.estimation
    )
    return rates, buffers


def compute_age_verification(predictions: pd.DataFrame, params: ReportSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NIST's age-verification rates per group, and the spread of every metric across groups."""
    outer = _outer(params, predictions)
    rates = age_verification_metrics(
        predictions,
        params.age_verification,
        by=params.gate_features,
        intersections=params.intersections,
        estimation=params.estimation,
        outer=outer,
    )
    spread = group_spread(
        predictions,
        params.age_verification,
        features=params.spread_features,
        accuracy_within=params.accuracy_within,
        outer=outer,
        balanced_bands=params.balanced_bands,
        estimation=params.estimation,
    )
    return rates, spread


def compute_image_quality(predictions: pd.DataFrame, landmarks: pd.DataFrame, params: ReportSettings) -> pd.DataFrame:
    """MAE by interocular-distance and head-yaw bins per group; empty when there are no landmarks."""
    quality = params.image_quality
    return quality_metrics(
        predictions,
        landmarks,
        by=params.gate_features,
        interocular_bins=quality.interocular_bins,
        yaw_edges=quality.yaw_edges,
        estimation=params.estimation,
    )


def make_paper_normality_table(predictions: pd.DataFrame, params: ReportSettings) -> pd.DataFrame:
    """The article's Appendix A (K² and the article's dispersion chi-square per race × gender × band)."""
    return paper_normality_table(predictions, bands=params.paper_age_bands)


def make_paper_correlation_table(
    predictions: pd.DataFrame, region_attributions: pd.DataFrame, params: ReportSettings
) -> pd.DataFrame:
    """The article's Appendix B from its own method (quickshift rows); empty without such explanations."""
    article = params.article
    return paper_correlation_table(
        predictions,
        region_attributions,
        bands=params.paper_age_bands,
        accurate_above=article.accurate_above,
        renormalisation=article.renormalisation,
        method=article.explanation_method,
    )


def make_region_weight_correlations(
    predictions: pd.DataFrame, region_attributions: pd.DataFrame, params: ReportSettings
) -> pd.DataFrame:
    """Our correlations of each region's LIME weight with accuracy (not the article's table)."""
    return region_weight_correlations(
        predictions,
        region_attributions,
        method=params.explanation_method,
        bands=params.paper_age_bands,
        accurate_above=params.article.accurate_above,
    )


def draw_figures(
    predictions: pd.DataFrame, age_gates: pd.DataFrame, region_attributions: pd.DataFrame, params: ReportSettings
) -> tuple[Image.Image, ...]:
    """Figures 4-5 (error and accuracy by race, by gender), gate rates, predicted vs true, heat map."""
    bands = params.paper_age_bands
    drawn = [
        figures.error_distributions(predictions, "race", bands),
        figures.error_distributions(predictions, "gender", bands),
        figures.gate_rates(age_gates, "race", outer=_outer(params, age_gates), confidence=params.confidence),
        figures.predicted_vs_true(predictions, "race"),
    ]
    has_attributions = region_attributions is not None and not region_attributions.empty
    weights = (
        figures.mean_region_weights(predictions, region_attributions, params.explanation_method, "race")
        if has_attributions
        else pd.DataFrame()
    )
    if weights.empty:
        drawn.append(
            figures.message_figure(
                "Group attribution heat map", "No region attributions in this run (run the explain pipeline)."
            )
        )
    else:
        drawn.append(figures.attribution_heatmap(weights, "Mean LIME weight of each facial region, by race"))
    return tuple(figures.figure_to_image(figure) for figure in drawn)


def build_audit_report(
    predictions: pd.DataFrame,
    quarantine: pd.DataFrame,
    landmarks: pd.DataFrame,
    params: ReportSettings,
    **outputs: pd.DataFrame | Image.Image,
) -> str:
    """The self-contained HTML audit report: a report card, findings in words, every table and figure,
    and what could not be computed.

    ``outputs``: the pipeline's ``TABLES`` and ``FIGURES`` by their catalog names.
    """
    tables = AuditTables(
        predictions=predictions,
        quarantine=quarantine,
        landmarks=landmarks,
        **{name: outputs[name] for name in AuditTables.__dataclass_fields__ if name in outputs},
    )
    figures = AuditFigures(**{name: outputs[f"figure_{name}"] for name in AuditFigures.__dataclass_fields__})
    report = audit_report_context(tables, figures, params)
    document = render_audit_report(report)
    logger.info(
        "audit_report: %d findings, %d tables, %.1f kB", len(report.findings), len(report.tables), len(document) / 1024
    )
    return document

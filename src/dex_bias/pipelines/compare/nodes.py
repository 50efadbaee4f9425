"""Nodes of the ``compare`` pipeline.

Thin wrappers over ``dex_bias.stats.comparison`` and ``dex_bias.report.comparison``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
from PIL import Image

from dex_bias.models.registry import ModelsSettings
from dex_bias.report import comparison as report
from dex_bias.report.figures import figure_to_image
from dex_bias.report.settings import ReportSettings
from dex_bias.schema import settings_dataclass
from dex_bias.stats import comparison
from dex_bias.stats.contract import prepare_predictions

logger = logging.getLogger(__name__)


@settings_dataclass
class LeaderboardSettings:
    """``compare.leaderboard``: the gate rate (``gate_measure`` at ``challenge_age``) whose spread
    across groups ranks fairness."""

    gate_measure: str
    challenge_age: int | float


@settings_dataclass
class CompareSettings:
    """``params:compare`` (conf/base/parameters_compare.yml): the groups compared (gate rates:
    all but ``age_band``) and the leaderboard; bands, intervals and tests are the report's."""

    features: list[str]
    leaderboard: LeaderboardSettings

    @property
    def gate_features(self) -> list[str]:
        return [feature for feature in self.features if feature != "age_band"]


def collect_predictions(
    report_params: ReportSettings, **predictions: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model's contract-checked predictions on the faces all models predicted: ``(long table, coverage)``."""
    contract = report_params.input
    checked = {
        model: prepare_predictions(
            table,
            allow_quarantine=contract.allow_quarantine,
            source=f"{model} predictions",
            age_range=contract.predicted_age_range,
        )[0]
        for model, table in predictions.items()
    }
    return comparison.same_faces(checked)


def compare_metrics(
    compared: pd.DataFrame, report_params: ReportSettings, compare_params: CompareSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MAE and mean signed error (bootstrap CIs) and gate rates (Wilson CIs) per model and group."""
    estimation = report_params.estimation
    metrics = comparison.model_metrics(compared, features=compare_params.features, estimation=estimation)
    gates = comparison.model_gate_metrics(
        compared,
        challenge_ages=report_params.challenge_ages,
        features=compare_params.gate_features,
        estimation=estimation,
    )
    return metrics, gates


def measure_spread(
    compared: pd.DataFrame, report_params: ReportSettings, compare_params: CompareSettings
) -> pd.DataFrame:
    """Per model and feature: the spread across groups of MAE and of the leaderboard's gate rate (CIs)."""
    board = compare_params.leaderboard
    return comparison.model_spread(
        compared,
        features=compare_params.gate_features,
        estimation=report_params.estimation,
        gate_measure=board.gate_measure,
        challenge_age=float(board.challenge_age),
    )


def rank_models(metrics: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard: overall MAE, and per feature the spread of group MAE and of the gate rate."""
    return comparison.leaderboard(metrics, spread)


def test_model_pairs(
    compared: pd.DataFrame, report_params: ReportSettings, compare_params: CompareSettings
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between models per group, Holm-corrected, with effects and intervals."""
    return comparison.paired_model_tests(
        compared,
        features=compare_params.features,
        estimation=replace(report_params.estimation, min_n=report_params.tests.min_n),
        alpha=report_params.alpha,
    )


def compare_region_attention(
    compared: pd.DataFrame, report_params: ReportSettings, **region_attributions: pd.DataFrame
) -> pd.DataFrame:
    """Mean LIME region weight per model × race × region (``regions`` rows), where explanations exist."""
    return comparison.region_attention(
        compared, region_attributions, method=report_params.explanation_method, bands=report_params.age_bands
    )


def draw_comparison_figures(
    metrics: pd.DataFrame, gates: pd.DataFrame, attention: pd.DataFrame, compare_params: CompareSettings
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """MAE by race per model, the leaderboard's gate rate by race per model, region weights per model."""
    from dex_bias.report.figures import message_figure

    board = compare_params.leaderboard
    drawn = [
        report.metric_by_group_figure(metrics, "race"),
        report.gate_by_group_figure(gates, "race", board.gate_measure, float(board.challenge_age)),
        report.region_attention_figure(attention)
        if len(attention)
        else message_figure("Region weights by model", "No region attributions for these models in this run."),
    ]
    return tuple(figure_to_image(figure) for figure in drawn)


def comparison_settings(report_params: ReportSettings, compare_params: CompareSettings) -> report.ComparisonSettings:
    """What the comparison report's card and words need from ``params:report`` and ``params:compare``."""
    board = compare_params.leaderboard
    return report.ComparisonSettings(
        features=tuple(compare_params.gate_features),
        gate_measure=board.gate_measure,
        challenge_age=float(board.challenge_age),
        alpha=report_params.alpha,
        confidence=report_params.confidence,
        min_n=report_params.min_n,
    )


def build_comparison_report(
    report_params: ReportSettings,
    compare_params: CompareSettings,
    models_params: ModelsSettings,
    **outputs: pd.DataFrame | Image.Image,
) -> str:
    """The self-contained HTML comparison of the audited models.

    ``outputs``: the compare tables by their ``ComparisonTables`` field names (``coverage``,
    ``leaderboard`` …) and the three figures (``figure_mae``, ``figure_gates``, ``figure_regions``).
    """
    tables = report.ComparisonTables(
        **{name: outputs[name] for name in report.ComparisonTables.__dataclass_fields__ if name != "declarations"},
        declarations=report.model_declarations(outputs["coverage"]["model"], models_params),
    )
    figures = [
        outputs["figure_mae"],
        outputs["figure_gates"],
        outputs["figure_regions"] if len(tables.attention) else None,
    ]
    settings = comparison_settings(report_params, compare_params)
    document = report.render_comparison_report(report.comparison_report_context(tables, figures, settings))
    logger.info("model_comparison_report: %d models, %.1f kB", len(tables.leaderboard), len(document) / 1024)
    return document

"""The ``report`` pipeline: predictions -> metrics, tests, gate and verification rates, image quality,
article tables, figures, HTML."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.report.nodes import (
    build_audit_report,
    compute_age_gates,
    compute_age_verification,
    compute_group_metrics,
    compute_image_quality,
    compute_significance_tests,
    draw_figures,
    make_paper_correlation_table,
    make_paper_normality_table,
    make_region_weight_correlations,
    prepare_report_input,
)
from dex_bias.wiring import pipeline_of

FIGURES = [
    "figure_error_by_race",
    "figure_error_by_gender",
    "figure_age_gates",
    "figure_predicted_vs_true",
    "figure_attribution_heatmap",
]
TABLES = [
    "group_metrics",
    "significance_tests",
    "age_gate_metrics",
    "challenge_age_buffers",
    "age_verification_metrics",
    "group_spread",
    "image_quality_metrics",
    "paper_normality_table",
    "paper_correlation_table",
    "region_weight_correlations",
]


def create_pipeline(**kwargs) -> Pipeline:
    """prepare -> metrics, tests, gates, verification, quality, article tables -> figures -> audit_report."""
    return pipeline_of(
        "report",
        [
            (prepare_report_input, ["predictions", "params:report"], ["report_predictions", "report_input_quarantine"]),
            (compute_group_metrics, ["report_predictions", "params:report"], "group_metrics"),
            (compute_significance_tests, ["report_predictions", "params:report"], "significance_tests"),
            (compute_age_gates, ["report_predictions", "params:report"], ["age_gate_metrics", "challenge_age_buffers"]),
            (
                compute_age_verification,
                ["report_predictions", "params:report"],
                ["age_verification_metrics", "group_spread"],
            ),
            (compute_image_quality, ["report_predictions", "landmarks", "params:report"], "image_quality_metrics"),
            (make_paper_normality_table, ["report_predictions", "params:report"], "paper_normality_table"),
            (
                make_paper_correlation_table,
                ["report_predictions", "region_attributions", "params:report"],
                "paper_correlation_table",
            ),
            (
                make_region_weight_correlations,
                ["report_predictions", "region_attributions", "params:report"],
                "region_weight_correlations",
            ),
            (draw_figures, ["report_predictions", "age_gate_metrics", "region_attributions", "params:report"], FIGURES),
            (
                build_audit_report,
                {
                    "predictions": "report_predictions",
                    "quarantine": "report_input_quarantine",
                    "landmarks": "landmarks",
                    "params": "params:report",
                    **{name: name for name in TABLES + FIGURES},
                },
                "audit_report",
            ),
        ],
    )

"""The ``report`` pipeline: predictions -> metrics, tests, gate rates, article tables, figures, HTML."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.report.nodes import (
    build_audit_report, compute_age_gates, compute_group_metrics, compute_significance_tests, draw_figures,
    make_paper_correlation_table, make_paper_normality_table, prepare_report_input,
)

FIGURES = ["figure_error_by_race", "figure_error_by_gender", "figure_age_gates", "figure_predicted_vs_true",
           "figure_attribution_heatmap"]


def create_pipeline(**kwargs) -> Pipeline:
    """prepare -> metrics, tests, gates, article tables -> figures -> audit_report."""
    return Pipeline(
        [
            Node(prepare_report_input, ["predictions", "params:report"],
                 ["report_predictions", "report_input_quarantine"], name="prepare_report_input"),
            Node(compute_group_metrics, ["report_predictions", "params:report"], "group_metrics",
                 name="compute_group_metrics"),
            Node(compute_significance_tests, ["report_predictions", "params:report"], "significance_tests",
                 name="compute_significance_tests"),
            Node(compute_age_gates, ["report_predictions", "params:report"],
                 ["age_gate_metrics", "challenge_age_buffers"], name="compute_age_gates"),
            Node(make_paper_normality_table, ["report_predictions", "params:report"], "paper_normality_table",
                 name="make_paper_normality_table"),
            Node(make_paper_correlation_table, ["report_predictions", "region_attributions", "params:report"],
                 "paper_correlation_table", name="make_paper_correlation_table"),
            Node(draw_figures, ["report_predictions", "age_gate_metrics", "region_attributions", "params:report"],
                 FIGURES, name="draw_figures"),
            Node(build_audit_report,
                 {"predictions": "report_predictions", "quarantine": "report_input_quarantine",
                  "group_metrics": "group_metrics", "significance_tests": "significance_tests",
                  "age_gate_metrics": "age_gate_metrics", "challenge_age_buffers": "challenge_age_buffers",
                  "paper_normality_table": "paper_normality_table",
                  "paper_correlation_table": "paper_correlation_table",
                  **{name: name for name in FIGURES}, "params": "params:report"},
                 "audit_report", name="build_audit_report"),
        ],
        namespace="report",
        prefix_datasets_with_namespace=False,
    )

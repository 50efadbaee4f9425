"""The ``compare`` pipeline: every audited model's predictions -> side-by-side metrics, tests, report.

Its inputs are each audited model's ``predictions`` (``models.audit``: the model trained here
under its plain names, a declared model ``K`` under ``K.predictions``), so the pipeline is built
for the run's list of models; with fewer than two it is empty.
"""

import warnings

from kedro.pipeline import Pipeline

from dex_bias.model_audit import audited, dataset_name
from dex_bias.pipelines.compare.nodes import (
    build_comparison_report,
    collect_predictions,
    compare_metrics,
    compare_region_attention,
    draw_comparison_figures,
    measure_spread,
    rank_models,
    test_model_pairs,
)
from dex_bias.wiring import pipeline_of

FIGURES = ["figure_model_mae", "figure_model_gates", "figure_model_regions"]
#: The comparison report's inputs: its argument names and their datasets.
REPORT_INPUTS = {
    "coverage": "model_coverage",
    "leaderboard": "model_leaderboard",
    "spread": "model_group_spread",
    "metrics": "model_comparison_metrics",
    "gates": "model_comparison_gates",
    "paired": "model_paired_tests",
    "attention": "model_region_attention",
    "figure_mae": "figure_model_mae",
    "figure_gates": "figure_model_gates",
    "figure_regions": "figure_model_regions",
}


def create_pipeline(**kwargs) -> Pipeline:
    """predictions of each model -> same faces -> metrics, gates, leaderboard, paired tests, regions -> report."""
    models = audited()
    if len(models) < 2:
        return Pipeline([])
    predictions = {model: dataset_name(model, "predictions") for model in models}
    attributions = {model: dataset_name(model, "region_attributions") for model in models}
    with warnings.catch_warnings():
        # The dotted names are the models' own namespaces (dlib_age_v1.predictions), read across
        # them on purpose; Kedro warns about dots in names outside a node's namespace.
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        return _pipeline(predictions, attributions)


def _pipeline(predictions: dict[str, str], attributions: dict[str, str]) -> Pipeline:
    return pipeline_of(
        "compare",
        [
            (
                collect_predictions,
                {"report_params": "params:report", **predictions},
                ["compared_predictions", "model_coverage"],
            ),
            (
                compare_metrics,
                ["compared_predictions", "params:report", "params:compare"],
                ["model_comparison_metrics", "model_comparison_gates"],
            ),
            (measure_spread, ["compared_predictions", "params:report", "params:compare"], "model_group_spread"),
            (rank_models, ["model_comparison_metrics", "model_group_spread"], "model_leaderboard"),
            (test_model_pairs, ["compared_predictions", "params:report", "params:compare"], "model_paired_tests"),
            (
                compare_region_attention,
                {"compared": "compared_predictions", "report_params": "params:report", **attributions},
                "model_region_attention",
            ),
            (
                draw_comparison_figures,
                ["model_comparison_metrics", "model_comparison_gates", "model_region_attention", "params:compare"],
                FIGURES,
            ),
            (
                build_comparison_report,
                {
                    "report_params": "params:report",
                    "compare_params": "params:compare",
                    "models_params": "params:models",
                    **REPORT_INPUTS,
                },
                "model_comparison_report",
            ),
        ],
    )

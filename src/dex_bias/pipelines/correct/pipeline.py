"""The ``correct`` pipeline: fit bias corrections on a calibration part, judge them on held-out rows."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.correct.nodes import (
    correct_predictions,
    evaluate_corrections,
    fit_corrections,
    measure_gender,
    prepare_correction_input,
    split_calibration,
)
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """predictions → split → fitted corrections → held-out metrics, corrected predictions, gender metrics."""
    return pipeline_of(
        "correct",
        [
            (prepare_correction_input, ["predictions", "params:correct"], "correction_input"),
            (split_calibration, ["correction_input", "params:correct"], "correction_split"),
            (
                fit_corrections,
                ["correction_input", "correction_split", "params:correct"],
                ["correction_candidates", "correction_model", "correction_selection"],
            ),
            (
                evaluate_corrections,
                ["correction_input", "correction_split", "correction_candidates", "correction_model", "params:correct"],
                ["correction_metrics", "correction_gate_metrics"],
            ),
            (
                correct_predictions,
                ["correction_input", "correction_split", "correction_model"],
                "corrected_predictions",
            ),
            (measure_gender, ["correction_input", "params:correct"], "gender_metrics"),
        ],
    )

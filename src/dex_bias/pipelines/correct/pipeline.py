"""The ``correct`` pipeline: fit bias corrections on a calibration part, judge them on held-out rows."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.correct.nodes import (
    correct_predictions,
    evaluate_corrections,
    fit_corrections,
    measure_gender,
    prepare_correction_input,
    split_calibration,
)


def create_pipeline(**kwargs) -> Pipeline:
    """predictions → split → fitted corrections → held-out metrics, corrected predictions, gender metrics."""
    return Pipeline(
        [
            Node(
                prepare_correction_input,
                ["predictions", "params:correct"],
                "correction_input",
                name="prepare_correction_input",
            ),
            Node(
                split_calibration, ["correction_input", "params:correct"], "correction_split", name="split_calibration"
            ),
            Node(
                fit_corrections,
                ["correction_input", "correction_split", "params:correct"],
                ["correction_candidates", "correction_model", "correction_selection"],
                name="fit_corrections",
            ),
            Node(
                evaluate_corrections,
                ["correction_input", "correction_split", "correction_candidates", "correction_model", "params:correct"],
                ["correction_metrics", "correction_gate_metrics"],
                name="evaluate_corrections",
            ),
            Node(
                correct_predictions,
                ["correction_input", "correction_split", "correction_model"],
                "corrected_predictions",
                name="correct_predictions",
            ),
            Node(measure_gender, ["correction_input", "params:correct"], "gender_metrics", name="measure_gender"),
        ],
        namespace="correct",
        prefix_datasets_with_namespace=False,
    )

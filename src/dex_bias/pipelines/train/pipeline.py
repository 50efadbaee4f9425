"""The ``train`` pipeline: faces + landmarks -> ``age_model``, ``training_history``, ``learning_curve``."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.train.nodes import (
    load_starting_model,
    plot_learning_curve,
    select_training_faces,
    train_age_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Starting model (fresh or from a weights file) + train-split crops -> trained model and its history."""
    return Pipeline(
        [
            Node(load_starting_model, "params:train", "starting_model", name="load_starting_model"),
            Node(
                select_training_faces,
                ["faces", "landmarks", "params:train"],
                "training_faces",
                name="select_training_faces",
            ),
            Node(
                train_age_model,
                ["starting_model", "training_faces", "params:train"],
                ["age_model", "training_history"],
                name="train_age_model",
            ),
            Node(plot_learning_curve, "training_history", "learning_curve", name="plot_learning_curve"),
        ],
        namespace="train",
        prefix_datasets_with_namespace=False,
    )

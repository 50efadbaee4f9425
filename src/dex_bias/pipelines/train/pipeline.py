"""The ``train`` pipeline: faces + landmarks -> ``age_model``, ``training_history``, ``learning_curve``."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.train.nodes import (
    load_starting_model,
    plot_learning_curve,
    select_training_faces,
    train_age_model,
)
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """Starting model (fresh or from a weights file) + train-split crops -> trained model and its history."""
    return pipeline_of(
        "train",
        [
            (load_starting_model, "params:train", "starting_model"),
            (select_training_faces, ["faces", "landmarks", "params:train"], "training_faces"),
            (train_age_model, ["starting_model", "training_faces", "params:train"], ["age_model", "training_history"]),
            (plot_learning_curve, "training_history", "learning_curve"),
        ],
    )

"""Nodes of the ``train`` pipeline: thin wrappers over :mod:`dex_bias.models`."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dex_bias.models.inference import join_faces_and_landmarks
from dex_bias.models.spec import spec_for
from dex_bias.models.training import (
    TrainingSettings,
    learning_curve_figure,
    record_training,
    train_dex_model,
    training_crops,
)
from dex_bias.models.weights import StartingModel, load_model_from_config, model_card
from dex_bias.schema import settings_dataclass

logger = logging.getLogger(__name__)


@settings_dataclass
class TrainParameters(TrainingSettings):
    """``params:train`` (conf/base/parameters_train.yml): the fitting settings, the model to start
    from, which faces are trained on (``splits``, ``max_faces``: a seeded sample, ``None``: all)
    and how their crops are cut (``crop_batch_size``, ``crop_workers`` threads, ``crop_padding``)."""

    model: StartingModel
    splits: tuple[str, ...]
    max_faces: int | None
    crop_batch_size: int
    crop_workers: int
    crop_padding: str


def load_starting_model(params: TrainParameters):
    """The model to train: a fresh ``model.backbone``, or one loaded from ``model.weights_file``.

    Runs before any image is read, so a missing or wrong weights file stops the run at once.
    """
    model = load_model_from_config(params.model, seed=params.seed)
    card = model_card(model)
    logger.info(
        "Starting model: %s (%s, %s parameters)%s.",
        model.name,
        card.get("source"),
        f"{model.count_params():,}",
        f" from {card['weights_file']} [{card['weights_match']}]" if "weights_file" in card else "",
    )
    return model


def select_training_faces(faces: pd.DataFrame, landmarks: pd.DataFrame, params: TrainParameters) -> pd.DataFrame:
    """Faces of the training split(s) that have landmarks (a crop transform); the rest are counted in the log."""
    splits = list(params.splits)
    in_splits = faces[faces["split"].isin(splits)]
    joined, without = join_faces_and_landmarks(in_splits, landmarks)
    logger.info(
        "Training faces: %d of %d faces are in split(s) %s; %d have landmarks, %d have none "
        "(excluded: align found no face).",
        len(in_splits),
        len(faces),
        splits,
        len(joined),
        len(without),
    )
    max_faces = params.max_faces
    if max_faces is not None and len(joined) > max_faces:
        keep = np.sort(np.random.default_rng(params.seed).choice(len(joined), max_faces, replace=False))
        logger.info(
            "max_faces=%d: training on a seeded sample of %d of the %d usable faces.",
            int(max_faces),
            int(max_faces),
            len(joined),
        )
        joined = joined.iloc[keep].reset_index(drop=True)
    if len(joined) < 2:
        raise ValueError(
            f"only {len(joined)} face(s) of split(s) {splits} have landmarks: need at least 2 to train. "
            "Check the `split` column of faces and the alignment_failures table."
        )
    return joined


def train_age_model(starting_model, training_faces: pd.DataFrame, params: TrainParameters):
    """Cut the training crops at the model's input size and fit the model (``params`` are its
    :class:`~dex_bias.models.training.TrainingSettings`): ``(age_model, training_history)``."""
    spec = spec_for(starting_model)
    rows, crops, unreadable = training_crops(
        training_faces,
        spec,
        batch_size=params.crop_batch_size,
        padding=params.crop_padding,
        workers=params.crop_workers,
    )
    if unreadable:
        logger.warning(
            "%d training image(s) could not be decoded and were left out: %s",
            len(unreadable),
            "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""),
        )
    logger.info(
        "Cut %d training crops of %d px (%.1f MB); %d unreadable.",
        len(crops),
        spec.input_size,
        crops.nbytes / 1e6,
        len(unreadable),
    )
    result = train_dex_model(starting_model, crops, rows["age"].to_numpy(), rows["gender"].to_numpy(), params)
    record_training(starting_model, result, params.splits, len(rows), len(unreadable))
    return result.model, result.history


def plot_learning_curve(training_history: pd.DataFrame) -> Figure:
    """Loss and expected-age MAE per epoch, training beside validation (the early-stopping signal)."""
    return learning_curve_figure(training_history)

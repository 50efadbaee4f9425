"""Nodes of the ``train`` pipeline: thin wrappers over :mod:`dex_bias.models`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dex_bias.models.inference import join_faces_and_landmarks
from dex_bias.models.training import TrainingSettings, train_dex_model
from dex_bias.models.weights import load_model_from_config, model_card, set_model_card

logger = logging.getLogger(__name__)


def load_starting_model(params: dict[str, Any]):
    """The model to train: a fresh ``model.backbone``, or one loaded from ``model.weights_file``.

    Runs before any image is read, so a missing or wrong weights file stops the run at once.
    """
    model_config = dict(params.get("model", {}))
    model = load_model_from_config(model_config, build_options=model_config.get("options") or {},
                                   seed=int(params.get("seed", 42)))
    card = model_card(model)
    logger.info("Starting model: %s (%s, %s parameters)%s.", model.name, card.get("source"),
                f"{model.count_params():,}",
                f" from {card['weights_file']} [{card['weights_match']}]" if "weights_file" in card else "")
    return model


def select_training_faces(faces: pd.DataFrame, landmarks: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Faces of the training split(s) that have landmarks (a crop transform); the rest are counted in the log."""
    splits = list(params.get("splits", ["train"]))
    in_splits = faces[faces["split"].isin(splits)]
    joined, without = join_faces_and_landmarks(in_splits, landmarks)
    logger.info("Training faces: %d of %d faces are in split(s) %s; %d have landmarks, %d have none "
                "(excluded: align found no face).", len(in_splits), len(faces), splits, len(joined), len(without))
    max_faces = params.get("max_faces")
    if max_faces is not None and len(joined) > int(max_faces):
        keep = np.sort(np.random.default_rng(int(params.get("seed", 42))).choice(len(joined), int(max_faces),
                                                                                  replace=False))
        logger.info("max_faces=%d: training on a seeded sample of %d of the %d usable faces.",
                    int(max_faces), int(max_faces), len(joined))
        joined = joined.iloc[keep].reset_index(drop=True)
    if len(joined) < 2:
        raise ValueError(f"only {len(joined)} face(s) of split(s) {splits} have landmarks: need at least 2 to train. "
                         "Check the `split` column of faces and the alignment_failures table.")
    return joined


def train_age_model(starting_model, training_faces: pd.DataFrame, params: dict[str, Any]):
    """Cut the training crops at the model's input size and fit the model: ``(age_model, training_history)``."""
    from dex_bias.faces import iter_crop_batches
    from dex_bias.models import spec_for

    spec = spec_for(starting_model)
    unreadable: list[str] = []
    kept_rows, crop_batches = [], []
    for rows, crops in iter_crop_batches(training_faces, spec.input_size, int(params.get("crop_batch_size", 64)),
                                         padding=params.get("crop_padding", "edge"),
                                         workers=int(params.get("crop_workers", 2)),
                                         on_error=lambda row, error: unreadable.append(f"{row['image_id']} ({error})")):
        kept_rows.append(rows)
        crop_batches.append(crops)
    if unreadable:
        logger.warning("%d training image(s) could not be decoded and were left out: %s",
                       len(unreadable), "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else ""))
    rows = pd.concat(kept_rows) if kept_rows else training_faces.head(0)
    crops = np.concatenate(crop_batches) if crop_batches else np.empty((0, *spec.input_shape), np.uint8)
    logger.info("Cut %d training crops of %d px (%.1f MB); %d unreadable.", len(crops), spec.input_size,
                crops.nbytes / 1e6, len(unreadable))
    settings = TrainingSettings.from_params(params)
    result = train_dex_model(starting_model, crops, rows["age"].to_numpy(), rows["gender"].to_numpy(), settings)
    card = model_card(starting_model)
    trained = bool(result.summary.get("epochs_run", 0))
    if trained:
        card["female_column"] = 1  # training here uses UTKFace's codes: column 1 is female
    card.update({
        "trained_splits": list(params.get("splits", ["train"])) if trained else [],
        "training": result.summary,
        "n_training_faces": int(len(rows)),
        "n_unreadable": len(unreadable),
    })
    set_model_card(result.model, card)
    return result.model, result.history


def plot_learning_curve(training_history: pd.DataFrame) -> Figure:
    """Loss and expected-age MAE per epoch, training beside validation (the early-stopping signal)."""
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    loss_axes, mae_axes = figure.subplots(1, 2)
    if training_history.empty:
        for axes in (loss_axes, mae_axes):
            axes.text(0.5, 0.5, "no training epochs\n(model used as loaded)", ha="center", va="center")
            axes.set_axis_off()
        return figure
    epochs = training_history["epoch"]
    for axes, column, label in ((loss_axes, "loss", "loss (cross-entropy, both heads)"),
                                (mae_axes, "age_mae", "MAE of the expected age (years)")):
        if column in training_history:
            axes.plot(epochs, training_history[column], marker="o", markersize=3, label="training")
        if f"val_{column}" in training_history:
            axes.plot(epochs, training_history[f"val_{column}"], marker="o", markersize=3, label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend()
    if "val_age_mae" in training_history:
        best = training_history.loc[training_history["val_age_mae"].idxmin()]
        mae_axes.axvline(best["epoch"], color="grey", linestyle="--", linewidth=1)
        mae_axes.set_title(f"best validation MAE {best['val_age_mae']:.2f} at epoch {int(best['epoch'])} (kept)",
                           fontsize=9)
    return figure

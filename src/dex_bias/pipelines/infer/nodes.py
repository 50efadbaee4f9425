"""Nodes of the ``infer`` pipeline: thin wrappers over :mod:`dex_bias.models.inference`."""

from __future__ import annotations

import logging
from typing import Literal

import pandas as pd

from dex_bias.fanout import ChunkStore, FanOut
from dex_bias.models.inference import FAILURE_COLUMNS, join_faces_and_landmarks, predict_table, splits_to_predict
from dex_bias.models.runtime import as_estimator
from dex_bias.schema import settings_dataclass

logger = logging.getLogger(__name__)


@settings_dataclass
class InferParameters:
    """``params:infer`` (conf/base/parameters_infer.yml): which ``splits`` (auto | all | a list),
    ``batch_size`` faces per model call, ``crop_workers`` decode threads, ``crop_padding``, and
    ``chunk_size`` faces per Dask task and resumable chunk."""

    splits: Literal["auto", "all"] | tuple[str, ...]
    batch_size: int
    crop_workers: int
    crop_padding: str
    chunk_size: int


def predict_ages(
    faces: pd.DataFrame,
    landmarks: pd.DataFrame,
    age_model,
    infer_chunks: ChunkStore,
    params: InferParameters,
    dask: FanOut,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict the faces of the chosen splits: ``(predictions, inference_failures)``; counts reconcile in the log.

    ``age_model``: the Keras model trained here, or a declared model (an ``AgeEstimator``). The
    faces fan out on Dask as ``dask`` says; each chunk of ``infer.chunk_size`` faces is kept in
    ``infer_chunks`` as it is done, so a stopped run resumes there.
    """
    estimator = as_estimator(age_model)
    card = estimator.card or {}
    splits = splits_to_predict(card, sorted(faces["split"].dropna().unique()), params.splits)
    in_scope = faces[faces["split"].isin(splits)]
    table, without_landmarks = join_faces_and_landmarks(in_scope, landmarks)
    version = estimator.version
    logger.info(
        "Model %s (version %s, %s; trained on split(s) %s): predicting split(s) %s.",
        estimator.name,
        version,
        card.get("source", "unknown source"),
        card.get("trained_splits") or "none here",
        splits,
    )
    predictions, unreadable = predict_table(
        estimator,
        table,
        dask,
        batch_size=params.batch_size,
        chunk_size=params.chunk_size,
        padding=params.crop_padding,
        workers=params.crop_workers,
        model_version=version,
        store=infer_chunks,
    )
    failures = pd.concat([without_landmarks, unreadable], ignore_index=True)[FAILURE_COLUMNS]
    logger.info(
        "Faces: %d in all; %d in split(s) %s = %d predicted + %d without landmarks + %d unreadable.",
        len(faces),
        len(in_scope),
        splits,
        len(predictions),
        len(without_landmarks),
        len(unreadable),
    )
    if len(predictions) + len(failures) != len(in_scope):
        raise RuntimeError(
            f"counts do not reconcile: {len(in_scope)} faces in scope, {len(predictions)} predicted, "
            f"{len(failures)} failed"
        )
    return predictions, failures

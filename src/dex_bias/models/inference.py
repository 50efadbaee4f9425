"""Batched, streaming inference: faces + landmarks + a model -> the ``predictions`` table.

Crops are cut on demand by :func:`dex_bias.faces.iter_crop_batches` (the next batch is decoded
on a thread pool while the model works on the current one; at most two batches are held, so
memory stays flat as the image count grows) and fed through
:func:`dex_bias.models.make_head_function` (the model's own :class:`ModelSpec` preprocessing
and a compiled ``model(x, training=False)``).

Output columns (CONTRIBUTING.md's ``predictions`` contract): ``image_id``, ``age``, ``gender``,
``race``, ``split`` (carried from ``faces``), ``predicted_age`` (DEX expected age, years,
unrounded), ``argmax_age`` (the most probable bin), ``prob_female`` (NaN for a model without
a gender head), ``p_age_000`` … ``p_age_100``, ``model_name``, ``model_version``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dex_bias.models.spec import AGES, expected_age, make_head_function, spec_for

logger = logging.getLogger(__name__)

PROBABILITY_COLUMNS: list[str] = [f"p_age_{age:03d}" for age in AGES]
CARRIED_COLUMNS: tuple[str, ...] = ("age", "gender", "race", "split")
FAILURE_COLUMNS: list[str] = ["image_id", "reason", "detail"]


def join_faces_and_landmarks(faces: pd.DataFrame, landmarks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inner join on ``image_id``: ``(faces with their crop transforms, faces without landmarks)``.

    The second table has ``image_id``, ``reason`` (``missing_landmarks``) and ``detail``; the
    landmarks' own copies of face columns are dropped in favour of ``faces``'.
    """
    extra = [c for c in landmarks.columns if c == "image_id" or c not in faces.columns]
    joined = faces.merge(landmarks[extra], on="image_id", how="left", indicator=True, validate="one_to_one")
    missing = joined["_merge"] == "left_only"
    without = pd.DataFrame({
        "image_id": joined.loc[missing, "image_id"].astype(str).to_numpy(),
        "reason": "missing_landmarks",
        "detail": "no face was found by align (see alignment_failures)",
    }, columns=FAILURE_COLUMNS)
    return joined.loc[~missing].drop(columns="_merge").reset_index(drop=True), without


def prediction_frame(rows: pd.DataFrame, age_probs: np.ndarray, prob_female: np.ndarray | None,
                     model_name: str, model_version: str) -> pd.DataFrame:
    """One ``predictions`` chunk for ``rows`` (with ``image_id`` and the carried columns) and their model outputs."""
    columns: dict[str, Any] = {"image_id": rows["image_id"].astype(str).to_numpy()}
    for name in CARRIED_COLUMNS:
        if name in rows:
            columns[name] = rows[name].to_numpy()
    columns["predicted_age"] = expected_age(age_probs)
    columns["argmax_age"] = np.argmax(age_probs, axis=1).astype(np.int64)
    columns["prob_female"] = (np.asarray(prob_female, dtype=np.float64) if prob_female is not None
                              else np.full(len(rows), np.nan))
    probabilities = pd.DataFrame(np.asarray(age_probs, dtype=np.float32), columns=PROBABILITY_COLUMNS)
    frame = pd.concat([pd.DataFrame(columns), probabilities], axis=1)
    frame["model_name"] = model_name
    frame["model_version"] = model_version
    return frame


def iter_predictions(model, table: pd.DataFrame, *, batch_size: int = 64, padding: str = "edge",
                     workers: int = 2, model_version: str = "unversioned",
                     failures: list[dict[str, str]] | None = None) -> Iterable[pd.DataFrame]:
    """Stream ``predictions`` chunks for ``table`` (faces joined with landmarks), ``batch_size`` faces at a time.

    An image that cannot be decoded is appended to ``failures`` (``image_id``,
    ``reason = "unreadable_image"``, ``detail``) and left out; nothing else is dropped.
    """
    from dex_bias.faces import iter_crop_batches

    spec = spec_for(model)
    heads = make_head_function(model)
    failures = failures if failures is not None else []

    def record(row: pd.Series, error: Exception) -> None:
        reason_code = getattr(error, "reason", type(error).__name__)
        failures.append({"image_id": str(row["image_id"]), "reason": "unreadable_image",
                         "detail": f"{reason_code}: {error}"})

    for rows, crops in iter_crop_batches(table, spec.input_size, batch_size, padding=padding,
                                         workers=workers, on_error=record):
        if len(rows) == 0:
            continue
        age_probs, prob_female = heads(crops)
        yield prediction_frame(rows, age_probs, prob_female, model.name, model_version)


def predict_faces(model, table: pd.DataFrame, *, batch_size: int = 64, padding: str = "edge",
                  workers: int = 2, model_version: str = "unversioned",
                  log_every: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every face of ``table``: ``(predictions, failures)``, with progress in the log.

    ``len(predictions) + len(failures) == len(table)`` always holds.
    """
    failures: list[dict[str, str]] = []
    chunks = []
    started = time.perf_counter()
    done = 0
    batches = max(1, -(-len(table) // batch_size))
    for position, chunk in enumerate(iter_predictions(model, table, batch_size=batch_size, padding=padding,
                                                      workers=workers, model_version=model_version,
                                                      failures=failures), start=1):
        chunks.append(chunk)
        done += len(chunk)
        if log_every and (position % log_every == 0):
            elapsed = time.perf_counter() - started
            logger.info("predicted %d/%d faces (%.0f faces/s)", done, len(table), done / max(elapsed, 1e-9))
    predictions = (pd.concat(chunks, ignore_index=True) if chunks
                   else prediction_frame(table.head(0), np.empty((0, AGES.size)), None, model.name, model_version))
    failed = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    elapsed = time.perf_counter() - started
    logger.info("Predicted %d faces in %.1f s (%d batches of up to %d); %d unreadable.",
                len(predictions), elapsed, batches, batch_size, len(failed))
    if len(predictions) + len(failed) != len(table):
        raise RuntimeError(f"inference lost faces: {len(table)} in, {len(predictions)} predicted, "
                           f"{len(failed)} failed")
    return predictions, failed

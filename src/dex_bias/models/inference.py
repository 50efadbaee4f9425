"""Batched, streaming inference: faces + landmarks + a model -> the ``predictions`` table.

Any declared model runs here (:class:`~dex_bias.models.runtime.AgeEstimator`: Keras or ONNX;
a Keras model trained here is wrapped as one). Its crops are cut on demand, one per declared
input (:func:`dex_bias.faces.views.iter_view_batches`: the margin box or dlib's face chip; the
next batch is cut on a thread pool while the model works on the current one; at most two
batches are held, so memory stays flat as the image count grows).

:func:`predict_table` fans the faces out on Dask in chunks (:mod:`dex_bias.fanout`; the model is
loaded once per worker) and, given a :class:`~dex_bias.fanout.ChunkStore`, writes each chunk as it
is done, so a stopped run resumes where it stopped. :func:`predict_faces` runs in this process.

Output columns (CONTRIBUTING.md's ``predictions`` contract): ``image_id``, ``age``, ``gender``,
``race``, ``split`` (carried from ``faces``), ``predicted_age`` (expected age over the declared
class ages, years, unrounded), ``argmax_age`` (the age of the most probable class; the estimate
itself for a regression model), ``prob_female`` (NaN for a model without a gender head), one
probability column per class (``p_age_000`` … ``p_age_100`` for DEX's 101 bins, ``p_age_000`` …
``p_age_080`` for dlib's 81 classes; none for a regression model), ``model_name``,
``model_version``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from dex_bias.fanout import ChunkStore, FanOut, Task, rows_fingerprint, run_tasks
from dex_bias.fanout.engine import spread
from dex_bias.fanout.store import concat_tables
from dex_bias.models.runtime import AgeEstimator, HeadOutputs, as_estimator
from dex_bias.models.spec import MODEL_SPECS

logger = logging.getLogger(__name__)

#: DEX's 101 probability columns (the layouts trained here); a declared model has its own.
PROBABILITY_COLUMNS: list[str] = MODEL_SPECS["compact"].probability_columns
CARRIED_COLUMNS: tuple[str, ...] = ("age", "gender", "race", "split")
FAILURE_COLUMNS: list[str] = ["image_id", "reason", "detail"]


def splits_to_predict(card: dict[str, Any], all_splits: list[str], setting: str | tuple[str, ...]) -> list[str]:
    """The splits to predict: ``setting`` as a list, or for ``"auto"`` the splits the model was not trained on.

    ``"auto"``: a model trained (or fine-tuned) here on the ``train`` split predicts only the
    other splits (no leakage into the audit); a model used as loaded from a weights file
    predicts every split. ``"all"``: every split.
    """
    if isinstance(setting, str):
        if setting == "all":
            return sorted(all_splits)
        if setting != "auto":
            raise ValueError(f"infer.splits must be 'auto', 'all' or a list of split names, not {setting!r}")
        trained = set(card.get("trained_splits") or [])
        return sorted(split for split in all_splits if split not in trained)
    return list(setting)


def join_faces_and_landmarks(faces: pd.DataFrame, landmarks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inner join on ``image_id``: ``(faces with their crop transforms, faces without landmarks)``.

    The second table has ``image_id``, ``reason`` (``missing_landmarks``) and ``detail``; the
    landmarks' own copies of face columns are dropped in favour of ``faces``'.
    """
    extra = [c for c in landmarks.columns if c == "image_id" or c not in faces.columns]
    joined = faces.merge(landmarks[extra], on="image_id", how="left", indicator=True, validate="one_to_one")
    missing = joined["_merge"] == "left_only"
    without = pd.DataFrame(
        {
            "image_id": joined.loc[missing, "image_id"].astype(str).to_numpy(),
            "reason": "missing_landmarks",
            "detail": "no face was found by align (see alignment_failures)",
        },
        columns=FAILURE_COLUMNS,
    )
    return joined.loc[~missing].drop(columns="_merge").reset_index(drop=True), without


def prediction_frame(
    rows: pd.DataFrame, outputs: HeadOutputs, estimator: AgeEstimator, model_version: str | None = None
) -> pd.DataFrame:
    """One ``predictions`` chunk for ``rows`` (with ``image_id`` and the carried columns) and their model outputs."""
    spec = estimator.spec
    columns: dict[str, Any] = {"image_id": rows["image_id"].astype(str).to_numpy()}
    for name in CARRIED_COLUMNS:
        if name in rows:
            columns[name] = rows[name].to_numpy()
    columns["predicted_age"] = np.asarray(outputs.expected_age, dtype=np.float64)
    if spec.class_ages is None:
        columns["argmax_age"] = columns["predicted_age"]
    else:
        class_ages = np.asarray(spec.class_ages, dtype=np.float64)
        columns["argmax_age"] = class_ages[np.argmax(outputs.age_output, axis=1)] if len(rows) else np.empty(0)
    columns["prob_female"] = (
        np.asarray(outputs.prob_female, dtype=np.float64)
        if outputs.prob_female is not None
        else np.full(len(rows), np.nan)
    )
    frame = pd.DataFrame(columns)
    if spec.class_ages is not None:
        probabilities = pd.DataFrame(
            np.asarray(outputs.age_output, dtype=np.float32).reshape(len(rows), len(spec.probability_columns)),
            columns=spec.probability_columns,
        )
        frame = pd.concat([frame, probabilities], axis=1)
    frame["model_name"] = estimator.name
    frame["model_version"] = model_version or estimator.version
    return frame


def empty_predictions(estimator: AgeEstimator, model_version: str | None = None) -> pd.DataFrame:
    """A ``predictions`` table with no rows and the model's columns."""
    classes = len(estimator.spec.class_ages) if estimator.spec.class_ages is not None else 1
    nothing = HeadOutputs(np.empty((0, classes)), np.empty(0), None)
    rows = pd.DataFrame(
        {
            "image_id": pd.Series(dtype=str),
            **{name: pd.Series(dtype=np.int64) for name in ("age", "gender", "race")},
            "split": pd.Series(dtype=str),
        }
    )
    return prediction_frame(rows, nothing, estimator, model_version)


def predict_faces(
    model,
    table: pd.DataFrame,
    *,
    batch_size: int = 64,
    padding: str = "edge",
    workers: int = 2,
    model_version: str | None = None,
    log_every: int = 20,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every face of ``table`` (faces joined with landmarks): ``(predictions, failures)``.

    ``model``: an :class:`~dex_bias.models.runtime.AgeEstimator` or a Keras model of a known
    layout. Crops are cut ``batch_size`` faces at a time, the next batch while the model works on
    this one. An image that cannot be decoded or cut becomes a ``failures`` row (``image_id``,
    ``reason = "unreadable_image"``, ``detail``); nothing else is dropped, and
    ``len(predictions) + len(failures) == len(table)`` always holds. ``log_every``: progress in
    the log every that many batches, and a summary at the end (0: silent).
    """
    from dex_bias.faces.views import iter_view_batches

    estimator = as_estimator(model)
    failures: list[dict[str, str]] = []

    def record(row: pd.Series, error: Exception) -> None:
        reason_code = getattr(error, "reason", type(error).__name__)
        failures.append(
            {"image_id": str(row["image_id"]), "reason": "unreadable_image", "detail": f"{reason_code}: {error}"}
        )

    views = [spec.view for spec in estimator.views]
    chunks = []
    started = time.perf_counter()
    done = 0
    batches = iter_view_batches(table, views, batch_size, padding=padding, workers=workers, on_error=record)
    for position, (rows, crops) in enumerate(batches, start=1):
        if len(rows):
            chunks.append(prediction_frame(rows, estimator.predict(crops), estimator, model_version))
            done += len(rows)
        if log_every and (position % log_every == 0):
            elapsed = time.perf_counter() - started
            logger.info("predicted %d/%d faces (%.0f faces/s)", done, len(table), done / max(elapsed, 1e-9))
    predictions = pd.concat(chunks, ignore_index=True) if chunks else empty_predictions(estimator, model_version)
    failed = pd.DataFrame(failures, columns=FAILURE_COLUMNS)
    if log_every:
        logger.info(
            "Predicted %d faces in %.1f s (batches of up to %d); %d unreadable.",
            len(predictions),
            time.perf_counter() - started,
            batch_size,
            len(failed),
        )
    if len(predictions) + len(failed) != len(table):
        raise RuntimeError(f"inference lost faces: {len(table)} in, {len(predictions)} predicted, {len(failed)} failed")
    return predictions, failed


def predict_chunk(rows: pd.DataFrame, model, **settings) -> dict[str, pd.DataFrame]:
    """One Dask task: ``{"predictions", "failures"}`` of ``rows`` (faces joined with landmarks).

    ``model``: a :class:`~dex_bias.models.shipping.ModelRef` (the model loaded on this worker);
    ``settings``: :func:`predict_faces`'s ``batch_size``, ``padding``, ``workers``, ``model_version``.
    """
    predictions, failures = predict_faces(model.estimator(), rows, log_every=0, **settings)
    return {"predictions": predictions, "failures": failures}


def predict_table(
    model,
    table: pd.DataFrame,
    fan_out: FanOut,
    *,
    batch_size: int = 64,
    chunk_size: int = 256,
    padding: str = "edge",
    workers: int = 2,
    model_version: str | None = None,
    store: ChunkStore | None = None,
    root=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every face of ``table`` on ``fan_out``'s engine: ``(predictions, failures)``, in table order.

    ``chunk_size`` faces make one task (rounded up to whole batches of ``batch_size``, so every
    engine cuts the same batches). With ``store`` each chunk is written as it is done and a rerun
    computes only the chunks missing there (keyed by the chunk's rows, the model's fingerprint and
    these settings). ``len(predictions) + len(failures) == len(table)`` always holds.
    """
    from dex_bias.models.shipping import prepare_model

    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"infer.batch_size and infer.chunk_size must be at least 1, not {batch_size}, {chunk_size}")
    estimator = as_estimator(model)
    version = model_version or estimator.version
    per_task = -(-int(chunk_size) // int(batch_size)) * int(batch_size)
    ref, preload = prepare_model(estimator, root=root)
    settings = {"batch_size": int(batch_size), "padding": padding, "workers": int(workers), "model_version": version}
    table = table.reset_index(drop=True)
    tasks = []
    for start in range(0, len(table), per_task):
        rows = table.iloc[start : start + per_task].reset_index(drop=True)
        tasks.append(
            Task(rows_fingerprint(rows), tuple(rows["image_id"].astype(str)), predict_chunk, (rows, ref), settings)
        )
    stage = (
        None if store is None else store.stage("infer", {"model": ref.fingerprint, "model_name": ref.name, **settings})
    )
    results = run_tasks(
        f"infer ({estimator.name})",
        tasks,
        fan_out,
        store=stage,
        preload=[preload],
        readable=spread(table["path"].astype(str).tolist()) if "path" in table else (),
    )
    predictions = concat_tables(results, "predictions", empty=empty_predictions(estimator, version))
    failed = concat_tables(results, "failures", empty=pd.DataFrame(columns=FAILURE_COLUMNS))
    if len(predictions) + len(failed) != len(table):
        raise RuntimeError(f"inference lost faces: {len(table)} in, {len(predictions)} predicted, {len(failed)} failed")
    return predictions, failed

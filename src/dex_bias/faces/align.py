"""Align a table of face images, fanned out on Dask: one ``landmarks`` row or one failure per image.

Images are split into chunks of ``chunk_size`` (one task each) and run through
:func:`dex_bias.fanout.run_tasks` (a local Dask cluster by default, an existing one by address, or
this process); every worker thread loads dlib's models once and aligns its chunks with
:func:`dex_bias.faces.detect.align_image`. Results come back in the table's order, so any engine
gives the same tables as a synchronous run.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dex_bias.faces.columns import (
    CROP_COLUMNS,
    FIVE_POINT_X_COLUMNS,
    FIVE_POINT_Y_COLUMNS,
    LANDMARK_X_COLUMNS,
    LANDMARK_Y_COLUMNS,
)
from dex_bias.faces.detect import AlignSettings, align_chunk
from dex_bias.fanout import FanOut, Task, run_tasks
from dex_bias.fanout.engine import spread

logger = logging.getLogger(__name__)

LANDMARK_COLUMNS: tuple[str, ...] = (
    "image_id",
    "face_count",
    "detector_score",
    "upsample",
    "detection_stage",
    "border_pad",
    "box_left",
    "box_top",
    "box_right",
    "box_bottom",
    *CROP_COLUMNS,
    *LANDMARK_X_COLUMNS,
    *LANDMARK_Y_COLUMNS,
)
#: Added when ``AlignSettings.five_point`` is on (the default).
FIVE_POINT_COLUMNS: tuple[str, ...] = ("five_point_box", *FIVE_POINT_X_COLUMNS, *FIVE_POINT_Y_COLUMNS)
FAILURE_COLUMNS: tuple[str, ...] = ("image_id", "path", "reason", "detail")
#: Failure reasons: what happened, and what to do about it.
FAILURE_REASONS: dict[str, str] = {
    "no_face_found": "no detection stage found a frontal face; add a stage (align.detection.fallbacks) "
    "or lower align.detection.adjust_threshold",
    "image_unreadable": "the file could not be decoded now (it may have changed since ingest); re-run ingest",
    "alignment_error": "dlib failed on this image; see the detail",
}


def align_table(
    faces: pd.DataFrame,
    settings: AlignSettings,
    fan_out: FanOut,
    *,
    chunk_size: int = 16,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Align every row of ``faces`` (``image_id``, ``path``): ``(landmarks, failures)``.

    ``landmarks`` has :data:`LANDMARK_COLUMNS`, ``failures`` :data:`FAILURE_COLUMNS` (reasons
    in :data:`FAILURE_REASONS`); both in the order of ``faces``, and together they hold every
    image exactly once. ``chunk_size`` images make one task. Progress counts images.
    """
    missing = [c for c in ("image_id", "path") if c not in faces.columns]
    if missing:
        raise KeyError(f"the faces table lacks {missing}; align reads the `faces` dataset made by ingest")
    if int(chunk_size) < 1:
        raise ValueError(f"align.chunk_size must be at least 1, not {chunk_size}")
    image_ids = faces["image_id"].astype(str).tolist()
    paths = faces["path"].astype(str).tolist()
    tasks = [
        Task(
            str(start),
            tuple(image_ids[start : start + chunk_size]),
            align_chunk,
            (image_ids[start : start + chunk_size], paths[start : start + chunk_size], settings),
        )
        for start in range(0, len(faces), int(chunk_size))
    ]
    logger.info("Aligning %d images in %d tasks on %s", len(faces), len(tasks), fan_out.describe())
    results = run_tasks("align", tasks, fan_out, readable=spread(paths))
    aligned = [row for rows, _ in results for row in rows]
    failed = [row for _, rows in results for row in rows]
    columns = list(LANDMARK_COLUMNS) + (list(FIVE_POINT_COLUMNS) if settings.five_point else [])
    landmarks = pd.DataFrame(aligned, columns=columns)
    failures = pd.DataFrame(failed, columns=list(FAILURE_COLUMNS))
    # Explicit dtypes, so an empty table (or a run with no faces) keeps the contract's types.
    kinds = {column: np.float64 for column in columns}
    kinds.update(
        {"image_id": str, "detection_stage": str, "face_count": np.int64, "upsample": np.int64, "border_pad": np.int64}
    )
    if settings.five_point:
        kinds["five_point_box"] = str
    landmarks = landmarks.astype(kinds).copy()  # astype by column leaves one block per column: consolidate
    failures = failures.astype(str)
    if len(landmarks) + len(failures) != len(faces) or set(landmarks["image_id"]) & set(failures["image_id"]):
        raise RuntimeError(
            f"align lost track of images: {len(faces)} in, {len(landmarks)} aligned + {len(failures)} failed; "
            "this is a bug in dex_bias.faces.align, please report it with the faces table"
        )
    return landmarks, failures

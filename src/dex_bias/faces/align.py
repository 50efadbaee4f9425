"""Align a table of face images, fanned out on Dask: one ``landmarks`` row or one failure per image.

Images are split into chunks (one Dask task each); every worker process loads dlib's models
once and aligns its chunks with :func:`dex_bias.faces.detect.align_image`. Results come back
in the table's order, so any scheduler gives the same tables as a synchronous run.

Schedulers (:class:`FanOut`): ``processes`` (a local pool; the default, because dlib holds
the GIL), ``threads``, ``synchronous`` (one process, for debugging), or a ``dask.distributed``
scheduler ``address`` to go wider than one machine (``distributed`` is then needed; it is
imported only in that case).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dex_bias.faces.columns import (
    CROP_COLUMNS, FIVE_POINT_X_COLUMNS, FIVE_POINT_Y_COLUMNS, LANDMARK_X_COLUMNS, LANDMARK_Y_COLUMNS,
)
from dex_bias.faces.detect import AlignSettings, align_chunk, dlib_models, five_point_model

logger = logging.getLogger(__name__)

LANDMARK_COLUMNS: tuple[str, ...] = (
    "image_id", "face_count", "detector_score", "upsample", "detection_stage", "border_pad",
    "box_left", "box_top", "box_right", "box_bottom",
    *CROP_COLUMNS, *LANDMARK_X_COLUMNS, *LANDMARK_Y_COLUMNS,
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
SCHEDULERS = ("processes", "threads", "synchronous")
START_METHODS = ("fork", "spawn", "forkserver")


@dataclass(frozen=True)
class FanOut:
    """Where the per-image work runs: ``scheduler`` (``processes``, ``threads`` or
    ``synchronous``), ``workers`` (None: all CPU cores), ``address`` (a ``dask.distributed``
    scheduler, overriding ``scheduler``), ``chunk_size`` (images per task, at most) and
    ``start_method`` of worker processes (None: ``fork`` on Linux, ``spawn`` elsewhere)."""

    scheduler: str = "processes"
    workers: int | None = None
    address: str | None = None
    chunk_size: int = 32
    start_method: str | None = None

    def __post_init__(self):
        if self.start_method not in (None, *START_METHODS):
            raise ValueError(f"align.dask.start_method must be null or one of {START_METHODS}, not {self.start_method!r}")
        if self.address is None and self.scheduler not in SCHEDULERS:
            raise ValueError(f"align.dask.scheduler must be one of {SCHEDULERS}, not {self.scheduler!r}")
        if self.chunk_size < 1:
            raise ValueError(f"align.dask.chunk_size must be at least 1, not {self.chunk_size}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"align.dask.workers must be at least 1 (or null for all cores), not {self.workers}")

    @property
    def process_start_method(self) -> str:
        """How worker processes start: ``fork`` on Linux unless set (no re-import, and the
        models loaded once in this process are inherited), ``spawn`` elsewhere (macOS and
        Windows cannot fork safely)."""
        return self.start_method or ("fork" if sys.platform.startswith("linux") else "spawn")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def _chunks(count: int, fan_out: FanOut) -> list[slice]:
    # Small tables still use every worker: at least ~4 tasks per worker when possible.
    per_task = max(1, min(fan_out.chunk_size, math.ceil(count / (4 * fan_out.worker_count))))
    return [slice(start, min(start + per_task, count)) for start in range(0, count, per_task)]


def _run_local(tasks: list[tuple], fan_out: FanOut, progress) -> list[tuple[list[dict], list[dict]]]:
    import dask
    from dask.callbacks import Callback

    delayed_align = dask.delayed(align_chunk)
    graph = [delayed_align(ids, paths, settings) for ids, paths, settings in tasks]

    def advance(key, result, dsk, state, worker_id):
        progress.update(len(result[0]) + len(result[1]))

    scheduler = "sync" if fan_out.scheduler == "synchronous" else fan_out.scheduler
    # No more workers than tasks: each process holds dlib's 95 MB landmark model.
    options = {"scheduler": scheduler, "num_workers": min(fan_out.worker_count, len(graph))}
    config = {}
    if scheduler in ("processes", "threads"):
        # One task per dispatch (dask batches 6 by default, which leaves a worker idle while
        # another works through a batch of chunks).
        options["chunksize"] = 1
    if scheduler == "processes":
        config["multiprocessing.context"] = fan_out.process_start_method
        if fan_out.process_start_method == "fork":
            dlib_models()  # loaded once here, inherited by every forked worker
            if tasks and tasks[0][2].five_point:
                five_point_model()
    with dask.config.set(config), Callback(posttask=advance):
        return list(dask.compute(*graph, **options))


def _run_distributed(tasks: list[tuple], fan_out: FanOut, progress) -> list[tuple[list[dict], list[dict]]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ImportError(
            f"align.dask.address is set ({fan_out.address}) but dask.distributed is not installed. "
            "Install it into this environment with `pip install \"distributed==$(python -c 'import dask; "
            "print(dask.__version__)')\"`, or set align.dask.address: null to run on a local pool."
        ) from None
    with Client(fan_out.address) as client:
        futures = [client.submit(align_chunk, ids, paths, settings, pure=True) for ids, paths, settings in tasks]
        for future in as_completed(futures):
            aligned, failed = future.result()
            progress.update(len(aligned) + len(failed))
        return client.gather(futures)


def align_table(
    faces: pd.DataFrame,
    settings: AlignSettings,
    fan_out: FanOut = FanOut(),
    *,
    show_progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Align every row of ``faces`` (``image_id``, ``path``): ``(landmarks, failures)``.

    ``landmarks`` has :data:`LANDMARK_COLUMNS`, ``failures`` :data:`FAILURE_COLUMNS` (reasons
    in :data:`FAILURE_REASONS`); both in the order of ``faces``, and together they hold every
    image exactly once. A tqdm bar counts images.
    """
    from tqdm.auto import tqdm

    missing = [c for c in ("image_id", "path") if c not in faces.columns]
    if missing:
        raise KeyError(f"the faces table lacks {missing}; align reads the `faces` dataset made by ingest")
    image_ids = faces["image_id"].astype(str).tolist()
    paths = faces["path"].astype(str).tolist()
    tasks = [(image_ids[part], paths[part], settings) for part in _chunks(len(faces), fan_out)]
    where = fan_out.address or f"{fan_out.scheduler} x{fan_out.worker_count}"
    logger.info("Aligning %d images in %d tasks on Dask (%s)", len(faces), len(tasks), where)
    with tqdm(total=len(faces), desc="align", unit="image", disable=not show_progress, mininterval=1.0) as progress:
        if not tasks:
            results = []
        elif fan_out.address:
            results = _run_distributed(tasks, fan_out, progress)
        else:
            results = _run_local(tasks, fan_out, progress)
    aligned = [row for rows, _ in results for row in rows]
    failed = [row for _, rows in results for row in rows]
    columns = list(LANDMARK_COLUMNS) + (list(FIVE_POINT_COLUMNS) if settings.five_point else [])
    landmarks = pd.DataFrame(aligned, columns=columns)
    failures = pd.DataFrame(failed, columns=list(FAILURE_COLUMNS))
    # Explicit dtypes, so an empty table (or a run with no faces) keeps the contract's types.
    kinds = {column: np.float64 for column in columns}
    kinds.update({"image_id": str, "detection_stage": str, "face_count": np.int64, "upsample": np.int64,
                  "border_pad": np.int64})
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

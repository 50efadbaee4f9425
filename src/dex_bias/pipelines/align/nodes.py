"""Nodes of the ``align`` pipeline: thin wrappers over :mod:`dex_bias.faces`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dex_bias.faces import crop_transforms, cut_crops, landmarks_in_crop
from dex_bias.faces.align import align_table
from dex_bias.faces.contact_sheet import contact_sheet
from dex_bias.faces.detect import AlignSettings, DetectionStage
from dex_bias.fanout import FanOut
from dex_bias.utkface import GENDER_NAMES, RACE_NAMES

logger = logging.getLogger(__name__)


def align_settings(params: dict[str, Any]) -> AlignSettings:
    """``AlignSettings`` from the ``align`` parameters (``detection`` and ``crop`` blocks).

    Keys left out (e.g. by a conf env that overrides ``align`` with only a few keys) take the
    defaults of ``AlignSettings``, which are those of conf/base/parameters_align.yml.
    """
    defaults = AlignSettings()
    detection = params.get("detection") or {}
    crop = params.get("crop") or {}
    upsample = int(detection.get("upsample", 1))
    stages = [DetectionStage(f"upsample_{upsample}", upsample=upsample, pad=0.0)]
    fallbacks = detection["fallbacks"] if "fallbacks" in detection else [
        {"name": stage.name, "upsample": stage.upsample, "pad": stage.pad} for stage in defaults.stages[1:]]
    for number, fallback in enumerate(fallbacks or [], start=1):
        unknown = set(fallback) - {"name", "upsample", "pad"}
        if unknown:
            raise ValueError(
                f"align.detection.fallbacks[{number - 1}] has unknown keys {sorted(unknown)}; "
                "each fallback takes name, upsample and pad (a fraction of the image side)"
            )
        stages.append(DetectionStage(
            str(fallback.get("name", f"fallback_{number}")),
            upsample=int(fallback.get("upsample", upsample)),
            pad=float(fallback.get("pad", 0.0)),
        ))
    five_point = params.get("five_point") or {}
    unknown = set(five_point) - {"enabled", "upsample"}
    if unknown:
        raise ValueError(f"align.five_point has unknown keys {sorted(unknown)}; it takes enabled and upsample")
    return AlignSettings(
        five_point=bool(five_point.get("enabled", defaults.five_point)),
        five_point_upsample=int(five_point.get("upsample", defaults.five_point_upsample)),
        stages=tuple(stages),
        adjust_threshold=float(detection.get("adjust_threshold", defaults.adjust_threshold)),
        max_side=int(detection.get("max_side", defaults.max_side)),
        margin=float(crop.get("margin", defaults.margin)),
        alignment=str(crop.get("alignment", defaults.alignment)),
        edge=str(crop.get("edge", defaults.edge)),
    )


def chunk_size(params: dict[str, Any]) -> int:
    """Images per Dask task (``align.chunk_size``); the old ``align.dask`` block is refused with where it went."""
    if "dask" in params or "progress" in params:
        raise KeyError("align.dask and align.progress moved to the `dask` parameters shared by align, infer and "
                       "explain (conf/base/parameters_dask.yml: address, workers, progress, ...); keep "
                       "align.chunk_size here")
    return int(params.get("chunk_size", 16))


def align_faces(faces: pd.DataFrame, params: dict[str, Any], dask: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detect, landmark and frame every row of ``faces``: ``(landmarks, alignment_failures)``.

    The images fan out on Dask as ``dask`` says (:class:`dex_bias.fanout.FanOut`). Every face
    lands in exactly one of the two tables; the counts are checked and logged.
    """
    landmarks, failures = align_table(faces, align_settings(params), FanOut.from_params(dask),
                                      chunk_size=chunk_size(params))
    logger.info(
        "faces = landmarks + alignment_failures: %d = %d + %d (a face found in %.2f %%)",
        len(faces), len(landmarks), len(failures), 100.0 * len(landmarks) / max(len(faces), 1),
    )
    if len(failures):
        logger.info("alignment failures by reason: %s", failures["reason"].value_counts().to_dict())
    if len(landmarks):
        logger.info("faces by detection stage: %s", landmarks["detection_stage"].value_counts().to_dict())
        logger.info("images with more than one face (most confident kept): %d", int((landmarks["face_count"] > 1).sum()))
    return landmarks, failures


def draw_contact_sheet(faces: pd.DataFrame, landmarks: pd.DataFrame, params: dict[str, Any]) -> Figure:
    """A seeded sample of aligned crops with their landmarks and labels, as one figure."""
    sheet = params.get("contact_sheet") or {}
    count = min(int(sheet.get("count", 48)), len(landmarks))
    size = int(sheet.get("crop_size", 128))
    sample = landmarks.sample(n=count, random_state=int(sheet.get("seed", 42))) if count else landmarks.head(0)
    sample = sample.merge(faces.astype({"image_id": str}), on="image_id", how="left", validate="one_to_one")
    crops = cut_crops(sample["path"].tolist(), crop_transforms(sample), size,
                      padding=str(sheet.get("padding", "edge")))
    points = landmarks_in_crop(sample, size) if sheet.get("draw_landmarks", True) else None
    titles = [
        f"{row.age} {GENDER_NAMES.get(row.gender, '?')} {RACE_NAMES.get(row.race, '?')}"
        if {"age", "gender", "race"} <= set(sample.columns) else str(row.image_id)[:16]
        for row in sample.itertuples()
    ]
    margin = params.get("crop", {}).get("margin", 0.4)
    heading = f"{count} of {len(landmarks)} aligned faces (margin {margin}, seed {sheet.get('seed', 42)})"
    return contact_sheet(crops, titles, points=points, columns=int(sheet.get("columns", 8)), heading=heading)

"""Nodes of the ``align`` pipeline: thin wrappers over :mod:`dex_bias.faces`."""

from __future__ import annotations

import logging

import pandas as pd
from matplotlib.figure import Figure

from dex_bias.faces.align import align_table
from dex_bias.faces.contact_sheet import ContactSheetSettings, aligned_faces_sheet
from dex_bias.faces.detect import AlignSettings, CropSettings, DetectionSettings, FivePointSettings
from dex_bias.fanout import FanOut
from dex_bias.schema import settings_dataclass

logger = logging.getLogger(__name__)


@settings_dataclass
class AlignParameters:
    """``params:align`` (conf/base/parameters_align.yml); each node takes the blocks it uses."""

    detection: DetectionSettings
    crop: CropSettings
    five_point: FivePointSettings
    chunk_size: int
    contact_sheet: ContactSheetSettings


def align_faces(
    faces: pd.DataFrame,
    detection: DetectionSettings,
    crop: CropSettings,
    five_point: FivePointSettings,
    chunk_size: int,
    dask: FanOut,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detect, landmark and frame every row of ``faces``: ``(landmarks, alignment_failures)``.

    The images fan out on Dask as ``dask`` says, ``chunk_size`` images a task. Every face lands
    in exactly one of the two tables; the counts are checked and logged.
    """
    landmarks, failures = align_table(
        faces, AlignSettings.from_parameters(detection, crop, five_point), dask, chunk_size=chunk_size
    )
    logger.info(
        "faces = landmarks + alignment_failures: %d = %d + %d (a face found in %.2f %%)",
        len(faces),
        len(landmarks),
        len(failures),
        100.0 * len(landmarks) / max(len(faces), 1),
    )
    if len(failures):
        logger.info("alignment failures by reason: %s", failures["reason"].value_counts().to_dict())
    if len(landmarks):
        logger.info("faces by detection stage: %s", landmarks["detection_stage"].value_counts().to_dict())
        logger.info(
            "images with more than one face (most confident kept): %d", int((landmarks["face_count"] > 1).sum())
        )
    return landmarks, failures


def draw_contact_sheet(
    faces: pd.DataFrame, landmarks: pd.DataFrame, sheet: ContactSheetSettings, crop: CropSettings
) -> Figure:
    """A seeded sample of aligned crops with their landmarks and labels, as one figure."""
    return aligned_faces_sheet(faces, landmarks, sheet, crop.margin)

"""Ingest nodes: make or find the images, screen them, split them (:mod:`dex_bias.ingest.screening`)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dex_bias.demo import DemoSettings, ensure_demo_faces
from dex_bias.ingest.screening import build_faces, describe_skipped, screen_image_folder
from dex_bias.schema import settings_dataclass
from dex_bias.utkface import AgeBands

logger = logging.getLogger(__name__)


@settings_dataclass
class DecodeSettings:
    """``ingest.decode``: images with a side under ``min_side`` or over ``max_pixels`` are
    quarantined; ``workers`` decode threads (``None``: 2 x CPU cores, at most 8)."""

    min_side: int
    max_pixels: int
    workers: int | None


@settings_dataclass
class SplitSettings:
    """``ingest.split``: the share of each race x gender x age band stratum held out, and the seed."""

    test_share: float
    seed: int


@settings_dataclass
class IngestParameters:
    """``params:ingest`` (conf/base/parameters_ingest.yml); each node takes the blocks it uses."""

    image_dir: str
    demo: DemoSettings
    split: SplitSettings
    age_bands: AgeBands
    decode: DecodeSettings


def _resolve(folder: str) -> Path:
    """Relative folders resolve against the working directory (the project root under kedro run)."""
    return Path(folder).expanduser().resolve()


def prepare_image_folder(image_dir: str, demo: DemoSettings) -> str:
    """The absolute image folder to scan; makes the demo faces first when ``image_dir`` is the
    demo's ``output_dir`` and no demo is there yet (an existing matching demo is reused, never rewritten)."""
    folder = _resolve(image_dir)
    if _resolve(demo.output_dir) == folder:
        outcome = ensure_demo_faces(folder, demo)
        logger.info("Demo faces %s in %s", outcome, folder)
    return str(folder)


def screen_images(image_folder: str, decode: DecodeSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scan ``image_folder``; returns (decodable, well-labelled, unique files; quarantine rows
    with a reason: bad name, label out of range, undecodable, duplicate id). The log line counts
    every file found: faces + quarantined + files skipped for their extension (by extension)."""
    unique, quarantine, skipped = screen_image_folder(
        image_folder, min_side=decode.min_side, max_pixels=decode.max_pixels, workers=decode.workers
    )
    n_skipped = sum(skipped.values())
    logger.info(
        "found %d files = %d faces + %d quarantined (%s) + %d skipped for their extension (%s)",
        len(unique) + len(quarantine) + n_skipped,
        len(unique),
        len(quarantine),
        ", ".join(f"{reason}: {n}" for reason, n in quarantine["reason"].value_counts().sort_index().items()) or "none",
        n_skipped,
        (describe_skipped(skipped) + "; only .jpg files are read") if skipped else "none",
    )
    return unique, quarantine


def split_faces(screened: pd.DataFrame, split: SplitSettings, age_bands: AgeBands) -> pd.DataFrame:
    """The ``faces`` table: labels, age band (``age_bands``, inclusive years) and a seeded
    train/test split stratified by race × gender × age band."""
    faces = build_faces(
        screened, test_share=split.test_share, seed=split.seed, bands=[tuple(band) for band in age_bands]
    )
    counts = faces["split"].value_counts()
    logger.info("faces split: %d train, %d test", counts.get("train", 0), counts.get("test", 0))
    return faces

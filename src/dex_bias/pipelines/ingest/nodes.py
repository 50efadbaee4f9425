"""Ingest nodes: make or find the images, screen them, split them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from dex_bias.demo import DemoSettings, ensure_demo_faces
from dex_bias.pipelines.ingest.screening import (
    QUARANTINE_COLUMNS, build_faces, describe_skipped, drop_duplicate_ids, parse_labels, probe_images,
    scan_image_folder,
)
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

#: Where the demo faces are made and read unless ``ingest.image_dir`` says otherwise.
DEFAULT_IMAGE_DIR = "data/01_raw/demo_faces"


def _resolve(folder: str) -> Path:
    """Relative folders resolve against the working directory (the project root under kedro run)."""
    return Path(folder).expanduser().resolve()


def prepare_image_folder(params: dict[str, Any]) -> str:
    """The absolute image folder to scan; makes the demo faces first when ``image_dir`` is the
    demo folder and no demo is there yet (an existing matching demo is reused, never rewritten).

    Keys left out fall back to the defaults of parameters_ingest.yml, so an environment that
    overrides only ``ingest.demo.count`` still runs.
    """
    image_dir = _resolve(params.get("image_dir", DEFAULT_IMAGE_DIR))
    demo = {"output_dir": DEFAULT_IMAGE_DIR, **(params.get("demo") or {})}
    if _resolve(demo["output_dir"]) == image_dir:
        outcome = ensure_demo_faces(image_dir, DemoSettings.from_params(demo))
        logger.info("Demo faces %s in %s", outcome, image_dir)
    return str(image_dir)


def screen_images(image_folder: str, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scan ``image_folder``; returns (decodable, well-labelled, unique files; quarantine rows
    with a reason: bad name, label out of range, undecodable, duplicate id). The log line counts
    every file found: faces + quarantined + files skipped for their extension (by extension)."""
    files, skipped = scan_image_folder(image_folder)
    labelled, bad_names = parse_labels(files)
    decode = params.get("decode") or {}
    decodable, undecodable = probe_images(
        labelled, min_side=int(decode.get("min_side", 32)), max_pixels=int(decode.get("max_pixels", 50_000_000)),
        workers=decode.get("workers") or None,
    )
    unique, duplicates = drop_duplicate_ids(decodable)
    quarantine = pd.concat([bad_names, undecodable, duplicates], ignore_index=True)[QUARANTINE_COLUMNS]
    quarantine = quarantine.sort_values("path", kind="stable").reset_index(drop=True)
    if len(files) != len(unique) + len(quarantine):  # every file lands in exactly one table
        raise AssertionError(f"ingest lost files: {len(files)} found, {len(unique)} kept, {len(quarantine)} quarantined")
    n_skipped = sum(skipped.values())
    logger.info("found %d files = %d faces + %d quarantined (%s) + %d skipped for their extension (%s)",
                len(files) + n_skipped, len(unique), len(quarantine),
                ", ".join(f"{reason}: {n}" for reason, n in quarantine["reason"].value_counts().sort_index().items())
                or "none", n_skipped, (describe_skipped(skipped) + "; only .jpg files are read") if skipped else "none")
    return unique, quarantine


def split_faces(screened: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The ``faces`` table: labels, age band and a seeded train/test split stratified by
    race × gender × age band."""
    split = params.get("split") or {}
    bands = params.get("age_bands") or DEFAULT_AGE_BANDS
    faces = build_faces(screened, test_share=float(split.get("test_share", 0.25)),
                        seed=int(split.get("seed", 42)), bands=[tuple(band) for band in bands])
    counts = faces["split"].value_counts()
    logger.info("faces split: %d train, %d test", counts.get("train", 0), counts.get("test", 0))
    return faces

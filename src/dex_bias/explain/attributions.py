"""The ``region_attributions`` table: its columns, how the explain stages' rows make it, and how
its readers (the report's tables and figures, the model comparison) take one method's weights.

A long table, one row per image × method × region (CONTRIBUTING.md lists its columns). Plain
pandas: importing this module loads neither LIME nor the models, so ``dex_bias.stats`` and
``dex_bias.report`` read attributions through it cheaply.
"""

from __future__ import annotations

import logging

import pandas as pd

logger = logging.getLogger(__name__)

ATTRIBUTION_COLUMNS = [
    "image_id",
    "method",
    "region",
    "weight",
    "region_empty",
    "intercept",
    "surrogate_r2",
    "predicted_age",
    "age",
    "gender",
    "race",
    "positive_share",
    "region_pixels",
    "model_age",
]
WEIGHT_COLUMNS = ["image_id", "region", "weight"]
#: Region names, in label order (label i of :mod:`~dex_bias.explain.regions`' maps is
#: ``REGION_NAMES[i]``); the dataset contract's spelling of the ``region`` column. Here, not in
#: ``regions``, so that the statistics read it without loading the region drawing.
REGION_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_area",
    "right_eye_area",
    "left_inner_eye",
    "right_inner_eye",
    "left_cheek",
    "right_cheek",
    "mouth",
    "chin",
    "top_band",
    "left_band",
    "right_band",
    "bottom_band",
    "background",
)


def empty_attributions() -> pd.DataFrame:
    """A ``region_attributions`` table without rows."""
    return pd.DataFrame(columns=ATTRIBUTION_COLUMNS)


def attribution_table(*parts: pd.DataFrame) -> pd.DataFrame:
    """``region_attributions``: the rows of every method (``regions``, ``quickshift``) in one long table."""
    frames = [part for part in parts if len(part)]
    table = pd.concat(frames, ignore_index=True) if frames else empty_attributions()
    table["region_empty"] = table["region_empty"].astype(bool)
    return table


def method_weights(region_attributions: pd.DataFrame | None, method: str) -> pd.DataFrame:
    """One method's weights, each (image, region) once: ``image_id``, ``region``, ``weight``.

    A table without a ``method`` column is taken as all of one method. A repeated (image,
    region) row (the article's data repeated records) counts once, the first, and is logged.
    None or no such rows: an empty table with those columns.
    """
    if region_attributions is None or region_attributions.empty:
        return pd.DataFrame(columns=WEIGHT_COLUMNS)
    rows = region_attributions
    if "method" in rows:
        rows = rows[rows["method"] == method]
    rows = rows[WEIGHT_COLUMNS]
    repeated = rows.duplicated(["image_id", "region"])
    if repeated.any():
        logger.info(
            "region_attributions (%s): %d repeated (image, region) rows counted once", method, int(repeated.sum())
        )
    return rows[~repeated]


def prediction_disagreements(attributions: pd.DataFrame, tolerance: float) -> int:
    """How many explained images' expected age as explained (``model_age``) differs from the one
    in ``predictions`` (``predicted_age``) by more than ``tolerance`` years: a sign that the
    predictions were made with another model version or crop."""
    per_image = attributions.drop_duplicates("image_id")
    if not len(per_image):
        return 0
    return int((per_image["model_age"] - per_image["predicted_age"]).abs().gt(tolerance).sum())

"""Seeded, stratified split of predictions into a calibration part and a held-out part.

A correction is fitted on the calibration part and judged on the held-out part only: the
second study ("Bias in Age & Gender Prediction CNN") fitted and judged its correction on the
same rows, which rewards a correction for memorising noise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dex_bias.utkface import DEFAULT_AGE_BANDS, age_bands

logger = logging.getLogger(__name__)

CALIBRATION = "calibration"
HELD_OUT = "held_out"
STRATUM_COLUMNS = ("race", "gender", "age_band")


def stratum_labels(faces: pd.DataFrame, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS) -> pd.Series:
    """``race × gender × age band`` label per row (age band from true ``age`` and ``bands``)."""
    band = pd.Series(np.asarray(age_bands(faces["age"], bands).astype(str)), index=faces.index)
    return faces["race"].astype(int).astype(str) + "|" + faces["gender"].astype(int).astype(str) + "|" + band


def calibration_split(
    faces: pd.DataFrame, calibration_fraction: float, seed: int, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS
) -> pd.DataFrame:
    """Assign each row to ``calibration`` or ``held_out``, stratified by race × gender × age band.

    Within every stratum the rows are shuffled with ``numpy.random.default_rng(seed)`` and the
    first ``round(fraction · n)`` go to calibration. A stratum of one row goes to the held-out
    part when the rounding gives 0, so no group is silently left unevaluated; every stratum of
    two rows or more has rows in both parts (when ``0 < fraction < 1``).

    Parameters
    ----------
    faces : DataFrame with ``image_id``, ``age`` (years), ``gender`` (0/1), ``race`` (0-4).
    calibration_fraction : share of each stratum used to fit the correction, in (0, 1).
    seed : seed of the shuffle; the same input and seed give the same split.
    bands : inclusive ``(low, high)`` age bands (years) on true age.

    Returns
    -------
    DataFrame ``image_id``, ``stratum``, ``correction_part`` in the input's row order.
    """
    faces = faces.reset_index(drop=True)
    if not 0.0 < calibration_fraction < 1.0:
        raise ValueError(
            f"correct.split.calibration_fraction is {calibration_fraction}: it must lie strictly "
            "between 0 and 1 (a share of rows for fitting; the rest are held out). Fix it in "
            "conf/base/parameters_correct.yml."
        )
    if faces["image_id"].duplicated().any():
        dupes = faces.loc[faces["image_id"].duplicated(), "image_id"].head(5).tolist()
        raise ValueError(f"duplicate image_id in predictions, e.g. {dupes}: one row per image is needed to split")
    rng = np.random.default_rng(seed)
    strata = stratum_labels(faces, bands)
    part = pd.Series(HELD_OUT, index=faces.index, dtype=object)
    # Sorted strata so that the draw order (and so the split) does not depend on row order.
    for stratum in sorted(strata.unique()):
        members = strata.index[strata == stratum]
        # Sort by id before shuffling: the same ids give the same split whatever the row order.
        members = faces.loc[members, "image_id"].sort_values(kind="stable").index
        n_calibration = int(round(calibration_fraction * len(members)))
        if len(members) >= 2:
            n_calibration = min(max(n_calibration, 1), len(members) - 1)
        chosen = rng.permutation(len(members))[:n_calibration]
        part.loc[members[chosen]] = CALIBRATION
    split = pd.DataFrame(
        {"image_id": faces["image_id"].to_numpy(), "stratum": strata.to_numpy(), "correction_part": part.to_numpy()}
    )
    counts = split["correction_part"].value_counts()
    if counts.get(CALIBRATION, 0) < 2 or counts.get(HELD_OUT, 0) < 1:
        raise ValueError(
            f"{len(split)} predictions split into {counts.get(CALIBRATION, 0)} calibration and "
            f"{counts.get(HELD_OUT, 0)} held-out rows: a correction needs at least 2 rows to fit and 1 to "
            "judge it on. Supply more predictions, or change correct.split.calibration_fraction."
        )
    logger.info(
        "Correction split (seed %d, fraction %.2f): %d rows = %d calibration + %d held out, %d strata",
        seed,
        calibration_fraction,
        len(split),
        counts.get(CALIBRATION, 0),
        counts.get(HELD_OUT, 0),
        strata.nunique(),
    )
    return split

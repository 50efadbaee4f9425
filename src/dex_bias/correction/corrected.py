"""Corrected age estimates laid out in the ``predictions`` contract.

The table holds the *held-out* rows only: a corrected estimate on a calibration row would be
judged on the faces it was fitted on (the second study's mistake), and leaving those rows
uncorrected would mix two models in one audit. So the report run on this table audits the
correction out of sample, and its ``n`` is the held-out count.
"""

from __future__ import annotations

import logging

import pandas as pd

from dex_bias.correction.models import AgeCorrection
from dex_bias.correction.split import HELD_OUT

logger = logging.getLogger(__name__)


def corrected_predictions_table(
    predictions: pd.DataFrame, split: pd.DataFrame, correction: AgeCorrection
) -> pd.DataFrame:
    """Held-out rows of ``predictions`` with ``predicted_age`` replaced by the corrected age.

    Args:
        predictions: contract-checked predictions (``image_id``, ``predicted_age``, ``age``,
            ``gender``, ``race``, any other columns such as ``prob_female``, ``p_age_*``).
        split: ``image_id``, ``correction_part`` from ``calibration_split``.
        correction: the fitted correction to apply.

    Returns:
        The same columns in the same order, plus ``uncorrected_age`` (the model's estimate,
        years) and ``correction`` (its name); ``model_name`` is suffixed ``+<correction>``
        (created as ``unnamed+<correction>`` when absent). ``argmax_age`` and ``p_age_*`` stay
        the model's raw outputs: the correction moves the estimate, not the distribution.
    """
    held_ids = set(split.loc[split["correction_part"] == HELD_OUT, "image_id"])
    held_out = predictions[predictions["image_id"].isin(held_ids)].reset_index(drop=True)
    corrected = held_out.copy()
    corrected["predicted_age"] = correction.predict(held_out)
    corrected["uncorrected_age"] = held_out["predicted_age"].to_numpy(dtype=float)
    corrected["correction"] = correction.name
    if "model_name" in corrected:
        corrected["model_name"] = corrected["model_name"].astype(str) + f"+{correction.name}"
    else:
        corrected["model_name"] = f"unnamed+{correction.name}"
    logger.info(
        "Corrected predictions: %d held-out rows of %d (%d calibration rows left out), correction %s",
        len(corrected),
        len(predictions),
        len(predictions) - len(corrected),
        correction.name,
    )
    return corrected

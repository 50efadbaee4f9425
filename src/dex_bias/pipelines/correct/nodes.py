"""Nodes of the ``correct`` pipeline: thin wrappers over ``dex_bias.correction`` and ``dex_bias.stats``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from dex_bias.correction.corrected import corrected_predictions_table
from dex_bias.correction.evaluate import correction_effects, gate_effects
from dex_bias.correction.models import AgeCorrection, select_correction
from dex_bias.correction.split import CALIBRATION, HELD_OUT, calibration_split
from dex_bias.stats.contract import PLAUSIBLE_AGE_RANGE, PredictionsContractError, prepare_predictions
from dex_bias.stats.gender import gender_metrics

logger = logging.getLogger(__name__)


def _bands(params: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in band) for band in params["bands"])


def _part(prepared: pd.DataFrame, split: pd.DataFrame, part: str) -> pd.DataFrame:
    ids = set(split.loc[split["correction_part"] == part, "image_id"])
    return prepared[prepared["image_id"].isin(ids)].reset_index(drop=True)


def prepare_correction_input(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Contract-checked predictions (labels from columns or UTKFace ids); bad rows stop or are logged."""
    try:
        low, high = params["input"].get("predicted_age_range") or PLAUSIBLE_AGE_RANGE
        prepared, quarantine = prepare_predictions(
            predictions, allow_quarantine=bool(params["input"]["allow_quarantine"]),
            source=predictions.attrs.get("source", "predictions (correct)"),
            age_range=(float(low), float(high)), age_range_setting="correct.input.predicted_age_range")
    except PredictionsContractError as error:
        # The shared message names the report's switch; this pipeline has its own.
        raise PredictionsContractError(
            f"{error}\nIn the correct pipeline the switch is `correct.input.allow_quarantine` "
            "(conf/base/parameters_correct.yml).") from error
    if len(quarantine):
        logger.warning("correct: %d predictions rows set aside by the input contract: %s",
                       quarantine["row"].nunique(), quarantine["reason"].value_counts().to_dict())
    return prepared


def split_calibration(prepared: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Seeded calibration / held-out split, stratified by race × gender × age band."""
    split = params["split"]
    return calibration_split(prepared, float(split["calibration_fraction"]), int(split["seed"]), _bands(params))


def fit_corrections(prepared: pd.DataFrame, correction_split: pd.DataFrame,
                    params: dict[str, Any]) -> tuple[dict[str, AgeCorrection], AgeCorrection, pd.DataFrame]:
    """Fit the candidates on calibration rows only; return them, the chosen one (``none`` when nothing
    helps, said in the table's ``decision`` and logged), and the selection table."""
    calibration = _part(prepared, correction_split, CALIBRATION)
    cross_validation, guard = params["cross_validation"], params["guard"]
    models, chosen, cv_table = select_correction(
        calibration, max_degree=int(params["regression"]["max_degree"]),
        folds=int(cross_validation["folds"]), seed=int(cross_validation["seed"]),
        method=str(params["method"]), edges=tuple(params["bin_rule"]["predicted_age_edges"]),
        min_cell_n=int(params["min_cell_n"]), race_slopes=bool(params["regression"]["race_slopes"]),
        guard_features=tuple(guard["features"]), guard_min_n=int(guard["min_group_n"]), guard_z=float(guard["z"]),
        nested=bool(cross_validation["nested"]),
    )
    if chosen == "none":
        logger.warning("Correction: %s", cv_table["decision"].iloc[0])
    return models, models[chosen], cv_table


def evaluate_corrections(prepared: pd.DataFrame, correction_split: pd.DataFrame,
                         correction_candidates: dict[str, AgeCorrection], correction_model: AgeCorrection,
                         params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Before/after errors and age-gate rates of every kept candidate, scored on held-out rows only
    (intervals refit each correction on bootstrap samples of the calibration rows)."""
    held_out = _part(prepared, correction_split, HELD_OUT)
    calibration = _part(prepared, correction_split, CALIBRATION)
    evaluation = params["evaluation"]
    bands = _bands(params)
    metrics = correction_effects(
        held_out, correction_candidates, calibration=calibration, chosen=correction_model.name,
        sensitive_features=tuple(evaluation["sensitive_features"]),
        intersections=bool(evaluation["intersections"]), bands=bands, n_boot=int(evaluation["n_boot"]),
        seed=int(evaluation["seed"]), confidence=float(evaluation["confidence"]),
        min_n=int(evaluation["min_n"]), min_n_ci=int(evaluation["min_n_ci"]),
    )
    gates = gate_effects(
        held_out, correction_candidates, chosen=correction_model.name,
        challenge_ages=tuple(evaluation["challenge_ages"]), by=tuple(evaluation["gate_groups"]),
        intersections=bool(evaluation["intersections"]), confidence=float(evaluation["confidence"]),
        min_n=int(evaluation["min_n"]), bands=bands,
    )
    return metrics, gates


def correct_predictions(prepared: pd.DataFrame, correction_split: pd.DataFrame,
                        correction_model: AgeCorrection) -> pd.DataFrame:
    """Held-out predictions with the chosen correction applied, in the ``predictions`` contract."""
    return corrected_predictions_table(prepared, correction_split, correction_model)


def measure_gender(prepared: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Gender-head accuracy and error rates per race × age band (empty, with a logged reason, without a head)."""
    return gender_metrics(prepared, bands=_bands(params), min_n=int(params["gender"]["min_n"]))

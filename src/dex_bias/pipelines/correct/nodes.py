"""Nodes of the ``correct`` pipeline: thin wrappers over ``dex_bias.correction`` and ``dex_bias.stats``."""

from __future__ import annotations

import logging

import pandas as pd

from dex_bias.correction.corrected import corrected_predictions_table
from dex_bias.correction.evaluate import correction_effects, gate_effects
from dex_bias.correction.models import AgeCorrection, select_correction
from dex_bias.correction.settings import CorrectionSettings
from dex_bias.correction.split import CALIBRATION, HELD_OUT, calibration_split
from dex_bias.stats.contract import PredictionsContractError, prepare_predictions
from dex_bias.stats.engine import Estimation
from dex_bias.stats.gender import gender_metrics

logger = logging.getLogger(__name__)


def _part(prepared: pd.DataFrame, split: pd.DataFrame, part: str) -> pd.DataFrame:
    ids = set(split.loc[split["correction_part"] == part, "image_id"])
    return prepared[prepared["image_id"].isin(ids)].reset_index(drop=True)


def prepare_correction_input(predictions: pd.DataFrame, params: CorrectionSettings) -> pd.DataFrame:
    """Contract-checked predictions (labels from columns or UTKFace ids); bad rows stop or are logged."""
    try:
        prepared, quarantine = prepare_predictions(
            predictions,
            allow_quarantine=params.input.allow_quarantine,
            source=predictions.attrs.get("source", "predictions (correct)"),
            age_range=params.input.predicted_age_range,
            age_range_setting="correct.input.predicted_age_range",
        )
    except PredictionsContractError as error:
        # The shared message names the report's switch; this pipeline has its own.
        raise PredictionsContractError(
            f"{error}\nIn the correct pipeline the switch is `correct.input.allow_quarantine` "
            "(conf/base/parameters_correct.yml)."
        ) from error
    if len(quarantine):
        logger.warning(
            "correct: %d predictions rows set aside by the input contract: %s",
            quarantine["row"].nunique(),
            quarantine["reason"].value_counts().to_dict(),
        )
    return prepared


def split_calibration(prepared: pd.DataFrame, params: CorrectionSettings) -> pd.DataFrame:
    """Seeded calibration / held-out split, stratified by race × gender × age band."""
    return calibration_split(prepared, params.split.calibration_fraction, params.split.seed, params.age_bands)


def fit_corrections(
    prepared: pd.DataFrame, correction_split: pd.DataFrame, params: CorrectionSettings
) -> tuple[dict[str, AgeCorrection], AgeCorrection, pd.DataFrame]:
    """Fit the candidates on calibration rows only; return them, the chosen one (``none`` when nothing
    helps, said in the table's ``decision`` and logged), and the selection table."""
    calibration = _part(prepared, correction_split, CALIBRATION)
    cross_validation, guard = params.cross_validation, params.guard
    models, chosen, cv_table = select_correction(
        calibration,
        max_degree=params.regression.max_degree,
        folds=cross_validation.folds,
        seed=cross_validation.seed,
        method=params.method,
        edges=tuple(params.bin_rule.predicted_age_edges),
        min_cell_n=params.min_cell_n,
        race_slopes=params.regression.race_slopes,
        guard_features=tuple(guard.features),
        guard_min_n=guard.min_group_n,
        guard_z=guard.z,
        nested=cross_validation.nested,
    )
    if chosen == "none":
        logger.warning("Correction: %s", cv_table["decision"].iloc[0])
    return models, models[chosen], cv_table


def evaluate_corrections(
    prepared: pd.DataFrame,
    correction_split: pd.DataFrame,
    correction_candidates: dict[str, AgeCorrection],
    correction_model: AgeCorrection,
    params: CorrectionSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Before/after errors and age-gate rates of every kept candidate, scored on held-out rows only
    (intervals refit each correction on bootstrap samples of the calibration rows)."""
    held_out = _part(prepared, correction_split, HELD_OUT)
    calibration = _part(prepared, correction_split, CALIBRATION)
    evaluation = params.evaluation
    metrics = correction_effects(
        held_out,
        correction_candidates,
        calibration=calibration,
        chosen=correction_model.name,
        sensitive_features=tuple(evaluation.sensitive_features),
        intersections=evaluation.intersections,
        estimation=params.estimation,
        min_n_ci=evaluation.min_n_ci,
    )
    gates = gate_effects(
        held_out,
        correction_candidates,
        chosen=correction_model.name,
        challenge_ages=tuple(evaluation.challenge_ages),
        by=tuple(evaluation.gate_groups),
        intersections=evaluation.intersections,
        estimation=params.estimation,
    )
    return metrics, gates


def correct_predictions(
    prepared: pd.DataFrame, correction_split: pd.DataFrame, correction_model: AgeCorrection
) -> pd.DataFrame:
    """Held-out predictions with the chosen correction applied, in the ``predictions`` contract."""
    return corrected_predictions_table(prepared, correction_split, correction_model)


def measure_gender(prepared: pd.DataFrame, params: CorrectionSettings) -> pd.DataFrame:
    """Gender-head accuracy and error rates per race × age band (empty, with a logged reason, without a head)."""
    return gender_metrics(prepared, estimation=Estimation(bands=params.age_bands, min_n=params.gender.min_n))

"""Bias-correction models for age estimates: fitted on a calibration part, applied anywhere.

Two families, after the second study ("Bias in Age & Gender Prediction CNN"), which removed the
output bias of its age model by age, gender and race:

- ``RegressionCorrection``: ordinary least squares of true age on a polynomial in the predicted
  age (degree 1-3), gender and race one-hot; the degree is chosen by k-fold cross-validation
  within the calibration part (``select_correction``).
- ``BinResidualCorrection``: the study's rule, corrected age = predicted age + the mean residual
  (true - predicted) of the row's gender × race × predicted-age bin (< 25, 25-39, 40-59, 60+),
  as measured on the calibration part.
- ``NoCorrection``: the identity, kept as a candidate so that a correction that does not beat
  leaving the estimates alone is never chosen.

Each model records the features it expects (``features``) and ``predict(df)`` checks them,
naming what is missing. All ages are in years; inputs are the unrounded expected ages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from dex_bias.utkface import AGE_MAX, AGE_MIN, GENDER_NAMES, RACE_NAMES

logger = logging.getLogger(__name__)

#: Upper edges (exclusive) of the study's predicted-age bins: < 25, 25-39, 40-59, 60+.
STUDY_PREDICTED_AGE_EDGES: tuple[float, ...] = (25.0, 40.0, 60.0)
#: The polynomial runs on predicted age / 100 so that powers up to 3 stay well conditioned.
_AGE_SCALE = 100.0


class CorrectionFeatureError(ValueError):
    """Input to a correction lacks a feature it needs, or holds values it cannot use."""


def _check_features(df: pd.DataFrame, features: Sequence[str], method: str) -> None:
    missing = [name for name in features if name not in df.columns]
    if missing:
        raise CorrectionFeatureError(
            f"the {method} correction needs columns {list(features)}; missing: {missing}. "
            "Pass a predictions table prepared by dex_bias.stats.contract.prepare_predictions "
            "(it fills age, gender and race from UTKFace ids)."
        )
    for name in features:
        values = pd.to_numeric(df[name], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if bad.any():
            examples = df.loc[bad, "image_id"].head(5).tolist() if "image_id" in df else df.index[bad][:5].tolist()
            raise CorrectionFeatureError(
                f"the {method} correction needs a number in '{name}' on every row; "
                f"{int(bad.sum())} rows have none, e.g. {examples}"
            )
    if "gender" in features:
        unknown = ~df["gender"].astype(int).isin(list(GENDER_NAMES))
        if unknown.any():
            raise CorrectionFeatureError(
                f"gender must be 0 (male) or 1 (female); {int(unknown.sum())} rows hold "
                f"{sorted(df.loc[unknown, 'gender'].unique().tolist())}"
            )
    if "race" in features:
        unknown = ~df["race"].astype(int).isin(list(RACE_NAMES))
        if unknown.any():
            raise CorrectionFeatureError(
                f"race must be a UTKFace code 0-4; {int(unknown.sum())} rows hold "
                f"{sorted(df.loc[unknown, 'race'].unique().tolist())}"
            )


@dataclass
class AgeCorrection:
    """Base: a fitted map from (predicted age, gender, race) to a corrected age in years."""

    features: ClassVar[tuple[str, ...]] = ("predicted_age", "gender", "race")
    method: ClassVar[str] = "base"
    calibration_n: int = 0

    @property
    def name(self) -> str:
        """Short label used in tables and in the corrected ``model_name`` suffix."""
        return self.method

    def check_features(self, df: pd.DataFrame) -> None:
        """Raise ``CorrectionFeatureError`` naming any missing or unusable feature."""
        _check_features(df, self.features, self.name)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Corrected age (years, float, clipped to 0-116) for each row of ``df``."""
        self.check_features(df)
        corrected = self._predict(df)
        return np.clip(corrected, AGE_MIN, AGE_MAX)

    def _predict(self, df: pd.DataFrame) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class NoCorrection(AgeCorrection):
    """The identity: the estimate as the model gave it (the baseline every candidate must beat)."""

    method: ClassVar[str] = "none"
    features: ClassVar[tuple[str, ...]] = ("predicted_age",)

    def _predict(self, df: pd.DataFrame) -> np.ndarray:
        return df["predicted_age"].to_numpy(dtype=float)


@dataclass
class RegressionCorrection(AgeCorrection):
    """OLS of true age on [1, x, x², …, x^degree, gender, race one-hot], x = predicted age / 100.

    ``races`` are the race codes with their own coefficient (those seen in calibration except
    the reference, the lowest code seen); an unseen race gets the reference's effect, and
    ``predict`` logs how many rows that touched. The predicted age is clamped to the calibration
    range before the polynomial is evaluated, so that a cubic does not run away outside it.
    """

    method: ClassVar[str] = "regression"
    degree: int = 1
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_race: int = 0
    races: tuple[int, ...] = ()
    predicted_age_range: tuple[float, float] = (float(AGE_MIN), float(AGE_MAX))

    @property
    def name(self) -> str:
        return f"regression_deg{self.degree}"

    def design_matrix(self, df: pd.DataFrame) -> np.ndarray:
        """Rows × (1 + degree + 1 + len(races)) matrix of the regression's regressors."""
        low, high = self.predicted_age_range
        x = np.clip(df["predicted_age"].to_numpy(dtype=float), low, high) / _AGE_SCALE
        columns = [np.ones_like(x)] + [x ** power for power in range(1, self.degree + 1)]
        columns.append(df["gender"].to_numpy(dtype=float))
        race = df["race"].to_numpy(dtype=int)
        columns += [(race == code).astype(float) for code in self.races]
        return np.column_stack(columns)

    def _predict(self, df: pd.DataFrame) -> np.ndarray:
        unseen = ~df["race"].astype(int).isin([self.reference_race, *self.races])
        if unseen.any():
            logger.warning(
                "%d rows have a race not seen in calibration (%s): they get the reference race's (%d) effect",
                int(unseen.sum()), sorted(df.loc[unseen, "race"].astype(int).unique().tolist()), self.reference_race,
            )
        return self.design_matrix(df) @ self.coefficients


def fit_regression(calibration: pd.DataFrame, degree: int) -> RegressionCorrection:
    """Fit ``RegressionCorrection`` of ``age`` on predicted age (polynomial), gender, race one-hot.

    Least squares by ``numpy.linalg.lstsq`` (minimum-norm solution when a column is constant,
    e.g. one gender only). ``calibration`` needs ``age``, ``predicted_age``, ``gender``, ``race``.
    """
    if degree < 1:
        raise ValueError(f"polynomial degree must be at least 1, got {degree}")
    _check_features(calibration, ("age", "predicted_age", "gender", "race"), "regression")
    seen = sorted(calibration["race"].astype(int).unique().tolist())
    predicted = calibration["predicted_age"].to_numpy(dtype=float)
    model = RegressionCorrection(
        calibration_n=len(calibration), degree=int(degree), reference_race=seen[0], races=tuple(seen[1:]),
        predicted_age_range=(float(predicted.min()), float(predicted.max())),
    )
    design = model.design_matrix(calibration)
    model.coefficients, *_ = np.linalg.lstsq(design, calibration["age"].to_numpy(dtype=float), rcond=None)
    return model


def predicted_age_bin(predicted_age: np.ndarray | pd.Series, edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES) -> np.ndarray:
    """Bin label of each predicted age: ``'<25'``, ``'25-39'``, ``'40-59'``, ``'60+'`` for the study's edges.

    Edges are exclusive upper bounds on the unrounded estimate (24.9 is ``'<25'``, 25.0 is ``'25-39'``).
    """
    edges = [float(e) for e in edges]
    labels = [f"<{edges[0]:g}"] + [f"{lo:g}-{hi - 1:g}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]:g}+"]
    index = np.searchsorted(edges, np.asarray(predicted_age, dtype=float), side="right")
    return np.asarray(labels, dtype=object)[index]


@dataclass
class BinResidualCorrection(AgeCorrection):
    """The second study's rule: add the calibration mean residual of the gender × race × bin cell.

    ``cells`` has one row per cell seen in calibration: ``gender``, ``race``, ``predicted_age_bin``,
    ``n``, ``mean_residual`` (years, true − predicted) and ``offset`` (the mean residual, or 0
    where the cell had fewer than ``min_cell_n`` calibration rows: too few to estimate it).
    Rows of a cell never seen in calibration get offset 0 too; ``predict`` logs how many.
    """

    method: ClassVar[str] = "bin_rule"
    edges: tuple[float, ...] = STUDY_PREDICTED_AGE_EDGES
    min_cell_n: int = 5
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def offsets_for(self, df: pd.DataFrame) -> np.ndarray:
        """Offset (years) of each row's cell."""
        keys = pd.DataFrame({
            "gender": df["gender"].astype(int).to_numpy(), "race": df["race"].astype(int).to_numpy(),
            "predicted_age_bin": predicted_age_bin(df["predicted_age"], self.edges),
        })
        merged = keys.merge(self.cells[["gender", "race", "predicted_age_bin", "offset"]],
                            on=["gender", "race", "predicted_age_bin"], how="left")
        unseen = merged["offset"].isna()
        if unseen.any():
            logger.info("%d rows fall in gender × race × bin cells unseen in calibration: offset 0", int(unseen.sum()))
        return merged["offset"].fillna(0.0).to_numpy(dtype=float)

    def _predict(self, df: pd.DataFrame) -> np.ndarray:
        return df["predicted_age"].to_numpy(dtype=float) + self.offsets_for(df)


def fit_bin_rule(calibration: pd.DataFrame, edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES,
                 min_cell_n: int = 5) -> BinResidualCorrection:
    """Fit the study's bin rule: mean of (age − predicted_age) per gender × race × predicted-age bin."""
    _check_features(calibration, ("age", "predicted_age", "gender", "race"), "bin_rule")
    table = pd.DataFrame({
        "gender": calibration["gender"].astype(int).to_numpy(), "race": calibration["race"].astype(int).to_numpy(),
        "predicted_age_bin": predicted_age_bin(calibration["predicted_age"], edges),
        "residual": (calibration["age"].to_numpy(dtype=float) - calibration["predicted_age"].to_numpy(dtype=float)),
    })
    cells = (table.groupby(["gender", "race", "predicted_age_bin"], sort=True)["residual"]
             .agg(n="size", mean_residual="mean").reset_index())
    cells["offset"] = np.where(cells["n"] >= min_cell_n, cells["mean_residual"], 0.0)
    thin = cells["n"] < min_cell_n
    if thin.any():
        logger.info("Bin rule: %d of %d cells have fewer than %d calibration rows (%d rows): left uncorrected",
                    int(thin.sum()), len(cells), min_cell_n, int(cells.loc[thin, "n"].sum()))
    return BinResidualCorrection(calibration_n=len(calibration), edges=tuple(float(e) for e in edges),
                                 min_cell_n=int(min_cell_n), cells=cells)


def _kfold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [fold for fold in np.array_split(order, folds) if len(fold)]


def cross_validated_mae(calibration: pd.DataFrame, fit, folds: int, seed: int) -> float:
    """Mean absolute error (years) of ``fit(train) -> AgeCorrection`` over k seeded folds.

    Every row is scored once, by a model fitted without it; only ``calibration`` rows are used.
    """
    errors = np.empty(len(calibration))
    data = calibration.reset_index(drop=True)
    for fold in _kfold_indices(len(data), folds, seed):
        train = data.drop(index=fold)
        model = fit(train)
        errors[fold] = np.abs(model.predict(data.loc[fold]) - data.loc[fold, "age"].to_numpy(dtype=float))
    return float(errors.mean())


def select_correction(calibration: pd.DataFrame, max_degree: int = 3, folds: int = 5, seed: int = 0,
                      method: str = "auto", edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES,
                      min_cell_n: int = 5) -> tuple[dict[str, AgeCorrection], str, pd.DataFrame]:
    """Fit every candidate on ``calibration``, score each by k-fold CV within it, pick one.

    Candidates: ``none``, ``regression_deg1`` … ``regression_deg{max_degree}``, ``bin_rule``.
    Regression keeps only its best degree by CV. ``method``: ``auto`` picks the lowest CV MAE
    among the best regression, the bin rule and ``none``; ``regression`` / ``bin_rule`` force
    the family. No held-out row is seen here.

    Returns ``(models, chosen_name, cv_table)``: ``models`` maps name → model fitted on all of
    ``calibration`` (none, the best-degree regression, bin_rule); ``cv_table`` has ``candidate``,
    ``family``, ``degree``, ``cv_mae``, ``folds``, ``calibration_n``, ``kept``, ``chosen``.
    """
    if method not in {"auto", "regression", "bin_rule"}:
        raise ValueError(f"correct.method is {method!r}: use 'auto', 'regression' or 'bin_rule'")
    if max_degree < 1:
        raise ValueError(f"correct.regression.max_degree is {max_degree}: it must be at least 1")
    folds = int(min(folds, len(calibration)))
    if folds < 2:
        raise ValueError(f"the calibration part has {len(calibration)} rows: at least 2 are needed to cross-validate")
    rows = [{"candidate": "none", "family": "none", "degree": np.nan,
             "cv_mae": cross_validated_mae(calibration, lambda train: NoCorrection(len(train)), folds, seed)}]
    for degree in range(1, max_degree + 1):
        rows.append({"candidate": f"regression_deg{degree}", "family": "regression", "degree": degree,
                     "cv_mae": cross_validated_mae(calibration, lambda train, d=degree: fit_regression(train, d), folds, seed)})
    rows.append({"candidate": "bin_rule", "family": "bin_rule", "degree": np.nan,
                 "cv_mae": cross_validated_mae(calibration, lambda train: fit_bin_rule(train, edges, min_cell_n), folds, seed)})
    table = pd.DataFrame(rows)
    table["folds"] = folds
    table["calibration_n"] = len(calibration)
    regression_rows = table[table["family"] == "regression"]
    # Ties go to the simpler model (lower degree): idxmin returns the first minimum.
    best_regression = regression_rows.loc[regression_rows["cv_mae"].idxmin(), "candidate"]
    best_degree = int(regression_rows.loc[regression_rows["cv_mae"].idxmin(), "degree"])
    table["kept"] = table["candidate"].isin(["none", best_regression, "bin_rule"])
    models: dict[str, AgeCorrection] = {
        "none": NoCorrection(len(calibration)),
        best_regression: fit_regression(calibration, best_degree),
        "bin_rule": fit_bin_rule(calibration, edges, min_cell_n),
    }
    if method == "auto":
        kept = table[table["kept"]]
        chosen = kept.loc[kept["cv_mae"].idxmin(), "candidate"]
    else:
        chosen = best_regression if method == "regression" else "bin_rule"
    table["chosen"] = table["candidate"] == chosen
    logger.info("Correction candidates by %d-fold CV MAE on %d calibration rows: %s; chosen: %s",
                folds, len(calibration),
                ", ".join(f"{c}={m:.2f}" for c, m in zip(table["candidate"], table["cv_mae"])), chosen)
    return models, chosen, table

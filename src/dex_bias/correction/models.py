"""Bias-correction models for age estimates: fitted on a calibration part, applied anywhere.

Two families, after the second study ("Bias in Age & Gender Prediction CNN"), which removed the
output bias of its age model by age, gender and race:

- ``RegressionCorrection``: ordinary least squares of true age on a polynomial in the predicted
  age (degree 1-3), gender and race one-hot, and optionally race × predicted-age interactions
  (``race_slopes``): a group whose age cues are weak has its estimates compressed towards the
  mean, which only a slope of its own can undo. A race gets its own terms only with at least
  ``min_group_n`` calibration rows; rarer races take the reference race's.
- ``BinResidualCorrection``: the study's rule, corrected age = predicted age + the mean residual
  (true - predicted) of the row's gender × race × predicted-age bin (< 25, 25-39, 40-59, 60+),
  as measured on the calibration part, for cells of at least ``min_cell_n`` rows (30 by
  default: a cell of 5 rows has a mean residual with a standard error of ~10 years).
- ``NoCorrection``: the identity, kept as a candidate so that a correction that does not beat
  leaving the estimates alone is never chosen.

``select_correction`` chooses among them by cross-validation within the calibration rows with a
per-group guard (no candidate whose cross-validated error makes any race or gender group worse
beyond noise), and checks the whole choice by nested cross-validation: when the selection
procedure itself does not improve on the uncorrected estimates out of fold, ``none`` is kept and
the selection table says that nothing helps. Every model can ``refit`` itself on other rows (the
evaluation bootstraps the calibration part and refits, so its intervals include the fit's
uncertainty).

Each model records the features it expects (``features``) and ``predict(df)`` checks them,
naming what is missing. All ages are in years; inputs are the unrounded expected ages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from dex_bias.utkface import AGE_MAX, AGE_MIN, GENDER_NAMES, RACE_NAMES

logger = logging.getLogger(__name__)

#: Upper edges (exclusive) of the study's predicted-age bins: < 25, 25-39, 40-59, 60+.
STUDY_PREDICTED_AGE_EDGES: tuple[float, ...] = (25.0, 40.0, 60.0)
#: The polynomial runs on predicted age / 100 so that powers up to 3 stay well conditioned.
_AGE_SCALE = 100.0
_CONTROLLER: list[ThreadpoolController] = []


def _blas() -> ThreadpoolController:
    """One threadpool controller for the process (making one scans the loaded libraries)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


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
        column = df[name]
        values = (
            column.to_numpy(dtype=float, na_value=np.nan)
            if pd.api.types.is_numeric_dtype(column)
            else pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        )
        bad = ~np.isfinite(values)
        if bad.any():
            examples = df.loc[bad, "image_id"].head(5).tolist() if "image_id" in df else df.index[bad][:5].tolist()
            raise CorrectionFeatureError(
                f"the {method} correction needs a number in '{name}' on every row; "
                f"{int(bad.sum())} rows have none, e.g. {examples}"
            )
    for name, codes, allowed in (
        ("gender", GENDER_NAMES, "0 (male) or 1 (female)"),
        ("race", RACE_NAMES, "a UTKFace code 0-4"),
    ):
        if name not in features:
            continue
        unknown = pd.Series(~np.isin(df[name].to_numpy(dtype=float), list(codes)), index=df.index)
        if unknown.any():
            raise CorrectionFeatureError(
                f"{name} must be {allowed}; {int(unknown.sum())} rows hold "
                f"{sorted(df.loc[unknown, name].unique().tolist())}"
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

    def refit(self, calibration: pd.DataFrame) -> AgeCorrection:
        """The same kind of correction (same settings) fitted on ``calibration``."""
        raise NotImplementedError  # pragma: no cover - every concrete correction overrides it

    @property
    def corrects_anything(self) -> bool:
        """False when the fitted correction is the identity (nothing to evaluate beyond ``none``)."""
        return True

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

    def refit(self, calibration: pd.DataFrame) -> NoCorrection:
        return NoCorrection(len(calibration))

    @property
    def corrects_anything(self) -> bool:
        return False


@dataclass
class RegressionCorrection(AgeCorrection):
    """OLS of true age on [1, x, …, x^degree, gender, race one-hot, (race one-hot × x)], x = predicted age / 100.

    ``races`` are the race codes with their own coefficients (those with at least
    ``min_group_n`` calibration rows, except the reference, the lowest such code); any other race
    gets the reference's terms, and ``predict`` logs how many rows that touched. With
    ``race_slopes`` each of those races also gets its own slope in x. The predicted age is
    clamped to the calibration range before the polynomial is evaluated, so that a cubic does not
    run away outside it.
    """

    method: ClassVar[str] = "regression"
    degree: int = 1
    race_slopes: bool = False
    min_group_n: int = 30
    coefficients: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_race: int = 0
    races: tuple[int, ...] = ()
    predicted_age_range: tuple[float, float] = (float(AGE_MIN), float(AGE_MAX))

    @property
    def name(self) -> str:
        return f"regression_deg{self.degree}" + ("_race_slopes" if self.race_slopes else "")

    def design_matrix(self, df: pd.DataFrame) -> np.ndarray:
        """Rows × (1 + degree + 1 + k (+ k)) matrix of the regressors, k = ``len(races)``."""
        low, high = self.predicted_age_range
        x = np.clip(df["predicted_age"].to_numpy(dtype=float), low, high) / _AGE_SCALE
        columns = [np.ones_like(x)] + [x**power for power in range(1, self.degree + 1)]
        columns.append(df["gender"].to_numpy(dtype=float))
        race = df["race"].to_numpy(dtype=int)
        indicators = [(race == code).astype(float) for code in self.races]
        columns += indicators
        if self.race_slopes:
            columns += [indicator * x for indicator in indicators]
        return np.column_stack(columns)

    def _predict(self, df: pd.DataFrame) -> np.ndarray:
        unseen = ~df["race"].astype(int).isin([self.reference_race, *self.races])
        if unseen.any():
            logger.info(
                "%d rows have a race without its own terms in the %s correction (%s): they get the "
                "reference race's (%d)",
                int(unseen.sum()),
                self.name,
                sorted(df.loc[unseen, "race"].astype(int).unique().tolist()),
                self.reference_race,
            )
        return self.design_matrix(df) @ self.coefficients

    def refit(self, calibration: pd.DataFrame) -> RegressionCorrection:
        return fit_regression(calibration, self.degree, race_slopes=self.race_slopes, min_group_n=self.min_group_n)


def fit_regression(
    calibration: pd.DataFrame, degree: int, *, race_slopes: bool = False, min_group_n: int = 30
) -> RegressionCorrection:
    """Fit ``RegressionCorrection`` of ``age`` on predicted age (polynomial), gender, race (× slope).

    Least squares by ``numpy.linalg.lstsq`` (minimum-norm solution when a column is constant,
    e.g. one gender only). ``calibration`` needs ``age``, ``predicted_age``, ``gender``, ``race``.
    Races with fewer than ``min_group_n`` rows get no terms of their own.
    """
    if degree < 1:
        raise ValueError(f"polynomial degree must be at least 1, got {degree}")
    _check_features(calibration, ("age", "predicted_age", "gender", "race"), "regression")
    if len(calibration) == 0:
        raise ValueError("the regression correction needs calibration rows; there are none")
    counts = calibration["race"].astype(int).value_counts()
    eligible = sorted(counts[counts >= min_group_n].index.tolist()) or sorted(counts.index.tolist())[:1]
    predicted = calibration["predicted_age"].to_numpy(dtype=float)
    model = RegressionCorrection(
        calibration_n=len(calibration),
        degree=int(degree),
        race_slopes=bool(race_slopes),
        min_group_n=int(min_group_n),
        reference_race=eligible[0],
        races=tuple(eligible[1:]),
        predicted_age_range=(float(predicted.min()), float(predicted.max())),
    )
    design = model.design_matrix(calibration)
    # One BLAS thread: these fits are small and run by the hundred (cross-validation, refits), where
    # threads only contend (200 times slower on a loaded two-core machine, measured).
    with _blas().limit(limits=1, user_api="blas"):
        model.coefficients, *_ = np.linalg.lstsq(design, calibration["age"].to_numpy(dtype=float), rcond=None)
    return model


def predicted_age_bin(
    predicted_age: np.ndarray | pd.Series, edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES
) -> np.ndarray:
    """Bin label of each predicted age: ``'<25'``, ``'25-39'``, ``'40-59'``, ``'60+'`` for the study's edges.

    Edges are exclusive upper bounds on the unrounded estimate (24.9 is ``'<25'``, 25.0 is ``'25-39'``).
    """
    index = np.searchsorted([float(e) for e in edges], np.asarray(predicted_age, dtype=float), side="right")
    return np.asarray(_bin_labels(edges), dtype=object)[index]


def _bin_labels(edges: Sequence[float]) -> list[str]:
    edges = [float(e) for e in edges]
    return [f"<{edges[0]:g}"] + [f"{lo:g}-{hi - 1:g}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]:g}+"]


def _cell_keys(df: pd.DataFrame, edges: Sequence[float], binned: bool = False) -> np.ndarray:
    """``100 · gender + 10 · race + bin index`` per row (bins: the study's predicted-age bins)."""
    gender = df["gender"].to_numpy(dtype=float).astype(int)
    race = df["race"].to_numpy(dtype=float).astype(int)
    if binned:
        labels = {label: i for i, label in enumerate(_bin_labels(edges))}
        index = np.array([labels[v] for v in df["bin_index"]], dtype=int)
    else:
        index = np.searchsorted([float(e) for e in edges], df["predicted_age"].to_numpy(dtype=float), side="right")
    return 100 * gender + 10 * race + index


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
    min_cell_n: int = 30
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def offsets_for(self, df: pd.DataFrame) -> np.ndarray:
        """Offset (years) of each row's cell."""
        keys = _cell_keys(df, self.edges)
        known = _cell_keys(self.cells.rename(columns={"predicted_age_bin": "bin_index"}), self.edges, binned=True)
        order = np.argsort(known)
        position = np.searchsorted(known[order], keys)
        position = np.clip(position, 0, max(len(known) - 1, 0))
        found = (len(known) > 0) & (known[order][position] == keys) if len(known) else np.zeros(len(keys), bool)
        offsets = np.where(found, self.cells["offset"].to_numpy(float)[order][position] if len(known) else 0.0, 0.0)
        if (~found).any():
            logger.debug(
                "%d rows fall in gender × race × bin cells unseen in calibration: offset 0", int((~found).sum())
            )
        return offsets

    def _predict(self, df: pd.DataFrame) -> np.ndarray:
        return df["predicted_age"].to_numpy(dtype=float) + self.offsets_for(df)

    def refit(self, calibration: pd.DataFrame) -> BinResidualCorrection:
        return fit_bin_rule(calibration, self.edges, self.min_cell_n)

    @property
    def corrects_anything(self) -> bool:
        return bool(len(self.cells)) and bool((self.cells["offset"] != 0).any())


def fit_bin_rule(
    calibration: pd.DataFrame, edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES, min_cell_n: int = 30
) -> BinResidualCorrection:
    """Fit the study's bin rule: mean of (age − predicted_age) per gender × race × predicted-age bin."""
    _check_features(calibration, ("age", "predicted_age", "gender", "race"), "bin_rule")
    keys = _cell_keys(calibration, edges)
    residual = calibration["age"].to_numpy(dtype=float) - calibration["predicted_age"].to_numpy(dtype=float)
    codes, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=residual, minlength=len(codes)) / np.maximum(counts, 1)
    labels = np.asarray(_bin_labels(edges), dtype=object)
    cells = pd.DataFrame(
        {
            "gender": codes // 100,
            "race": (codes // 10) % 10,
            "predicted_age_bin": labels[codes % 10],
            "n": counts,
            "mean_residual": means,
        }
    )
    cells["offset"] = np.where(cells["n"] >= min_cell_n, cells["mean_residual"], 0.0)
    thin = cells["n"] < min_cell_n
    if thin.any():
        logger.debug(
            "Bin rule: %d of %d cells have fewer than %d calibration rows (%d rows): left uncorrected",
            int(thin.sum()),
            len(cells),
            min_cell_n,
            int(cells.loc[thin, "n"].sum()),
        )
    return BinResidualCorrection(
        calibration_n=len(calibration), edges=tuple(float(e) for e in edges), min_cell_n=int(min_cell_n), cells=cells
    )


def _kfold_indices(n: int, folds: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [fold for fold in np.array_split(order, folds) if len(fold)]


def _out_of_fold_errors(
    data: pd.DataFrame, fit: Callable[[pd.DataFrame], AgeCorrection], folds: Sequence[np.ndarray]
) -> np.ndarray:
    """|corrected − true| (years) of every row, each from a model fitted without the row's fold."""
    errors = np.empty(len(data))
    truth = data["age"].to_numpy(dtype=float)
    for fold in folds:
        model = fit(data.drop(index=data.index[fold]))
        errors[fold] = np.abs(model.predict(data.iloc[fold]) - truth[fold])
    return errors


def cross_validated_mae(calibration: pd.DataFrame, fit, folds: int, seed: int) -> float:
    """Mean absolute error (years) of ``fit(train) -> AgeCorrection`` over k seeded folds.

    Every row is scored once, by a model fitted without it; only ``calibration`` rows are used.
    """
    data = calibration.reset_index(drop=True)
    return float(_out_of_fold_errors(data, fit, _kfold_indices(len(data), folds, seed)).mean())


@dataclass(frozen=True)
class Candidate:
    """A correction to try: its name, family, settings and how to fit it."""

    name: str
    family: str
    degree: float
    race_slopes: bool
    fit: Callable[[pd.DataFrame], AgeCorrection]


def correction_candidates(
    max_degree: int = 3,
    edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES,
    min_cell_n: int = 30,
    race_slopes: bool = True,
) -> list[Candidate]:
    """``none``, additive regressions of degree 1..max, the same with race slopes, and the bin rule."""
    out = [Candidate("none", "none", np.nan, False, lambda train: NoCorrection(len(train)))]
    for slopes in (False, True) if race_slopes else (False,):
        for degree in range(1, max_degree + 1):
            name = f"regression_deg{degree}" + ("_race_slopes" if slopes else "")
            out.append(
                Candidate(
                    name,
                    "regression",
                    degree,
                    slopes,
                    lambda train, d=degree, r=slopes: fit_regression(train, d, race_slopes=r, min_group_n=min_cell_n),
                )
            )
    out.append(Candidate("bin_rule", "bin_rule", np.nan, False, lambda train: fit_bin_rule(train, edges, min_cell_n)))
    return out


@dataclass(frozen=True)
class GuardResult:
    """The per-group guard's verdict on one candidate against ``none``, over out-of-fold errors."""

    passes: bool
    worst_group: str
    worst_change: float
    worst_se: float


def group_guard(
    data: pd.DataFrame, errors: np.ndarray, baseline: np.ndarray, *, features: Sequence[str], min_group_n: int, z: float
) -> GuardResult:
    """Does a correction make any group's error worse beyond noise?

    For every group of each feature with at least ``min_group_n`` rows: the mean change in
    absolute error against the uncorrected estimate (paired, years) and its standard error; the
    candidate fails when some group's change exceeds ``z`` standard errors. The worst group is the
    one with the largest change − z·SE.
    """
    worst = GuardResult(True, "", float("nan"), float("nan"))
    worst_margin = -np.inf
    change = errors - baseline
    for feature in features:
        values = data[feature].to_numpy()
        for value in pd.unique(values):
            inside = values == value
            n = int(inside.sum())
            if n < max(min_group_n, 2):
                continue
            mean, se = float(change[inside].mean()), float(change[inside].std(ddof=1) / np.sqrt(n))
            margin = mean - z * se
            if margin > worst_margin:
                worst_margin = margin
                worst = GuardResult(True, f"{feature}={value}", mean, se)
    return GuardResult(worst_margin <= 0, worst.worst_group, worst.worst_change, worst.worst_se)


def _select(
    data: pd.DataFrame, candidates: Sequence[Candidate], folds: Sequence[np.ndarray], guard: dict, method: str
) -> tuple[str, list[dict]]:
    """Score every candidate by k-fold CV within ``data``; pick one. Returns (name, table rows)."""
    baseline = np.abs(data["predicted_age"].to_numpy(float) - data["age"].to_numpy(float))
    rows = []
    for candidate in candidates:
        errors = baseline if candidate.family == "none" else _out_of_fold_errors(data, candidate.fit, folds)
        verdict = (
            GuardResult(True, "", float("nan"), float("nan"))
            if candidate.family == "none"
            else group_guard(data, errors, baseline, **guard)
        )
        rows.append(
            {
                "candidate": candidate.name,
                "family": candidate.family,
                "degree": candidate.degree,
                "race_slopes": candidate.race_slopes,
                "cv_mae": float(errors.mean()),
                "cv_mae_change": float(errors.mean() - baseline.mean()),
                "worst_group": verdict.worst_group,
                "worst_group_change": verdict.worst_change,
                "worst_group_se": verdict.worst_se,
                "passes_guard": verdict.passes,
            }
        )
    table = pd.DataFrame(rows)
    if method == "auto":
        eligible = table[(table["family"] != "none") & table["passes_guard"] & (table["cv_mae_change"] < 0)]
    else:  # a forced family: its best candidate, whatever the guard says (the table still says it)
        eligible = table[table["family"] == method]
    # Ties go to the simpler model: idxmin returns the first minimum, and simpler candidates come first.
    chosen = str(eligible.loc[eligible["cv_mae"].idxmin(), "candidate"]) if len(eligible) else "none"
    return chosen, rows


def select_correction(
    calibration: pd.DataFrame,
    max_degree: int = 3,
    folds: int = 5,
    seed: int = 0,
    method: str = "auto",
    edges: Sequence[float] = STUDY_PREDICTED_AGE_EDGES,
    min_cell_n: int = 30,
    *,
    race_slopes: bool = True,
    guard_features: Sequence[str] = ("race", "gender"),
    guard_min_n: int = 10,
    guard_z: float = 2.0,
    nested: bool = True,
) -> tuple[dict[str, AgeCorrection], str, pd.DataFrame]:
    """Choose a correction within the calibration rows: k-fold CV, a per-group guard, nested CV.

    1. Every candidate (``correction_candidates``) is scored by k-fold cross-validation within
       ``calibration``; the per-group guard (``group_guard``: races and genders with at least
       ``guard_min_n`` rows, ``guard_z`` standard errors) vetoes any candidate that makes a group
       worse beyond noise. ``auto`` picks the lowest CV MAE among the candidates that pass and beat
       ``none``; ``regression`` / ``bin_rule`` force that family's best.
    2. With ``nested``, the whole of step 1 is itself cross-validated: in each outer fold the
       choice is made on the other folds only and its pick, fitted there, scores the outer fold.
       When that out-of-fold error of the *procedure* is not below the uncorrected error, or the
       procedure fails the per-group guard, ``auto`` keeps ``none``: nothing reliably helps.

    No held-out row is seen here. Returns ``(models, chosen_name, table)``: ``models`` maps name →
    model fitted on all of ``calibration`` (none, the chosen one, and the best of each family by
    CV); ``table`` has one row per candidate (``candidate``, ``family``, ``degree``,
    ``race_slopes``, ``cv_mae``, ``cv_mae_change`` against none, ``worst_group`` with its
    ``worst_group_change`` and ``worst_group_se``, ``passes_guard``, ``kept`` (fitted and
    evaluated; a candidate that on these rows corrects nothing, such as a bin rule without a cell
    of ``min_cell_n`` rows, is not), ``chosen``), one
    row ``selection_procedure`` (family ``nested_cv``) with the procedure's nested-CV MAE and
    guard, ``folds``, ``calibration_n`` and ``decision`` (the choice in words).
    """
    if method not in {"auto", "regression", "bin_rule"}:
        raise ValueError(f"correct.method is {method!r}: use 'auto', 'regression' or 'bin_rule'")
    if max_degree < 1:
        raise ValueError(f"correct.regression.max_degree is {max_degree}: it must be at least 1")
    data = calibration.reset_index(drop=True)
    folds = int(min(folds, len(data)))
    if folds < 2:
        raise ValueError(f"the calibration part has {len(data)} rows: at least 2 are needed to cross-validate")
    _check_features(data, ("age", "predicted_age", "gender", "race"), "correction")
    candidates = correction_candidates(max_degree, edges, min_cell_n, race_slopes)
    by_name = {c.name: c for c in candidates}
    guard = {"features": tuple(guard_features), "min_group_n": int(guard_min_n), "z": float(guard_z)}
    chosen, rows = _select(data, candidates, _kfold_indices(len(data), folds, seed), guard, method)
    table = pd.DataFrame(rows)
    if method != "auto":
        decision = f"{chosen}: forced family {method}"
    elif chosen == "none":
        decision = (
            "none: no candidate lowered the cross-validated MAE without making a race or gender group "
            "worse beyond noise; nothing helps, so the estimates are left alone"
        )
    else:
        decision = f"{chosen}: lowest cross-validated MAE among the candidates that pass the per-group guard"
    nested_row = None
    if nested:
        truth = data["age"].to_numpy(float)
        baseline = np.abs(data["predicted_age"].to_numpy(float) - truth)
        procedure = np.empty(len(data))
        picks = []
        for outer in _kfold_indices(len(data), folds, seed + 1):
            train = data.drop(index=data.index[outer]).reset_index(drop=True)
            inner_folds = _kfold_indices(len(train), min(folds, len(train)), seed)
            pick, _ = _select(train, candidates, inner_folds, guard, method)
            picks.append(pick)
            model = by_name[pick].fit(train)
            procedure[outer] = np.abs(model.predict(data.iloc[outer]) - truth[outer])
        verdict = group_guard(data, procedure, baseline, **guard)
        change = float(procedure.mean() - baseline.mean())
        nested_row = {
            "candidate": "selection_procedure",
            "family": "nested_cv",
            "degree": np.nan,
            "race_slopes": False,
            "cv_mae": float(procedure.mean()),
            "cv_mae_change": change,
            "worst_group": verdict.worst_group,
            "worst_group_change": verdict.worst_change,
            "worst_group_se": verdict.worst_se,
            "passes_guard": verdict.passes,
            "outer_picks": ", ".join(picks),
        }
        if method == "auto" and chosen != "none" and (change >= 0 or not verdict.passes):
            why = (
                "does not lower the error out of fold"
                if change >= 0
                else f"makes {verdict.worst_group} worse beyond noise out of fold"
            )
            decision = (
                f"none: the selection procedure (nested CV, picks {', '.join(picks)}) {why} "
                f"(MAE change {change:+.2f} years); nothing reliably helps, so the estimates are left alone"
            )
            chosen = "none"
    if nested_row:
        table = pd.concat([table, pd.DataFrame([nested_row])], ignore_index=True)
    candidate_rows = table["family"] != "nested_cv"
    best = {}
    for family, slopes in (("regression", False), ("regression", True), ("bin_rule", False)):
        part = table[candidate_rows & (table["family"] == family) & (table["race_slopes"] == slopes)]
        if len(part):
            best[family, slopes] = str(part.loc[part["cv_mae"].idxmin(), "candidate"])
    kept = {"none", chosen, *best.values()}
    models: dict[str, AgeCorrection] = {name: by_name[name].fit(data) for name in by_name if name in kept}
    for name in [name for name in models if name not in ("none", chosen)]:
        model = models[name]
        if not model.corrects_anything:  # e.g. a bin rule none of whose cells has min_cell_n rows: `none` again
            del models[name]
            logger.info(
                "Correction %s corrects nothing on these calibration rows (no cell of %d rows): not evaluated",
                name,
                min_cell_n,
            )
        elif isinstance(model, RegressionCorrection) and model.race_slopes and not model.races:
            del models[name]  # no race with min_cell_n rows has slopes of its own: the additive model again
            logger.info(
                "Correction %s has no race with %d calibration rows: the same as the additive model, not evaluated",
                name,
                min_cell_n,
            )
    table["kept"] = table["candidate"].isin(models)
    table["chosen"] = table["candidate"] == chosen
    table["folds"] = folds
    table["calibration_n"] = len(data)
    table["decision"] = decision
    logger.info(
        "Correction candidates by %d-fold CV MAE on %d calibration rows: %s; %s",
        folds,
        len(data),
        ", ".join(f"{c}={m:.2f}" for c, m in zip(table["candidate"], table["cv_mae"])),
        decision,
    )
    return models, chosen, table

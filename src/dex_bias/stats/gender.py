"""Gender-head accuracy per race × age band, with Wilson intervals.

UTKFace codes gender 0 male, 1 female. A gender head's ``prob_female`` is the probability of
code 1, so the predicted code is 1 (female) where ``prob_female >= 0.5`` and 0 (male) otherwise.
The second study ("Bias in Age & Gender Prediction CNN") swapped these codes; a test pins the
mapping here. That study reported 81 % accuracy on White faces against 62-66 % on Black, Asian
and Indian faces for a Wiki-trained model.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from dex_bias.stats.intervals import wilson_interval
from dex_bias.utkface import DEFAULT_AGE_BANDS, RACE_NAMES, age_bands

logger = logging.getLogger(__name__)

#: ``prob_female`` at or above this reads as female (UTKFace code 1).
FEMALE_THRESHOLD = 0.5
MALE, FEMALE = 0, 1

GENDER_METRIC_COLUMNS: tuple[str, ...] = (
    "grouping", "group", "race", "age_band", "n", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
    "n_male", "n_female", "male_read_as_male", "male_read_as_female", "female_read_as_male",
    "female_read_as_female", "male_read_as_female_rate", "male_read_as_female_ci_low",
    "male_read_as_female_ci_high", "female_read_as_male_rate", "female_read_as_male_ci_low",
    "female_read_as_male_ci_high", "status",
)


def predicted_gender(prob_female: pd.Series | np.ndarray) -> np.ndarray:
    """UTKFace gender code from the gender head: 1 (female) where ``prob_female >= 0.5``, else 0 (male)."""
    return (np.asarray(prob_female, dtype=float) >= FEMALE_THRESHOLD).astype(int)


def _confusion_row(true_gender: np.ndarray, guessed: np.ndarray, min_n: int) -> dict[str, object]:
    n = len(true_gender)
    male, female = true_gender == MALE, true_gender == FEMALE
    counts = {
        "male_read_as_male": int(np.sum(male & (guessed == MALE))),
        "male_read_as_female": int(np.sum(male & (guessed == FEMALE))),
        "female_read_as_male": int(np.sum(female & (guessed == MALE))),
        "female_read_as_female": int(np.sum(female & (guessed == FEMALE))),
    }
    n_male, n_female = int(male.sum()), int(female.sum())
    correct = counts["male_read_as_male"] + counts["female_read_as_female"]
    accuracy_low, accuracy_high = wilson_interval(correct, n)
    m2f_low, m2f_high = wilson_interval(counts["male_read_as_female"], n_male)
    f2m_low, f2m_high = wilson_interval(counts["female_read_as_male"], n_female)
    flags = []
    if n < min_n:
        flags.append(f"small_group ({n} < {min_n}: wide interval)")
    if n_male == 0:
        flags.append("no_male_faces (male error rate undefined)")
    if n_female == 0:
        flags.append("no_female_faces (female error rate undefined)")
    return {
        "n": n, "accuracy": correct / n if n else np.nan,
        "accuracy_ci_low": accuracy_low, "accuracy_ci_high": accuracy_high,
        "n_male": n_male, "n_female": n_female, **counts,
        "male_read_as_female_rate": counts["male_read_as_female"] / n_male if n_male else np.nan,
        "male_read_as_female_ci_low": m2f_low, "male_read_as_female_ci_high": m2f_high,
        "female_read_as_male_rate": counts["female_read_as_male"] / n_female if n_female else np.nan,
        "female_read_as_male_ci_low": f2m_low, "female_read_as_male_ci_high": f2m_high,
        "status": "; ".join(flags) if flags else "ok",
    }


def gender_metrics(df: pd.DataFrame, *, bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
                   min_n: int = 30) -> pd.DataFrame:
    """Accuracy, confusion matrix and both error rates of the gender head, by race × age band.

    Args:
        df: a prepared predictions table (``dex_bias.stats.contract.prepare_predictions``):
            ``gender`` (true, 0 male / 1 female), ``race`` (0-4), ``age`` (years) and
            ``prob_female`` (the gender head's probability of female).
        bands: inclusive age bands on true age (default 0-12, 13-17, 18-24, 25-39, 40-59, 60+).
        min_n: groups with fewer faces are flagged ``small_group`` in ``status`` (as in the report).

    Returns:
        One row per group for the groupings ``overall``, ``race``, ``age_band`` and
        ``race × age_band`` (columns ``GENDER_METRIC_COLUMNS``): ``accuracy`` with its Wilson
        95 % interval; the confusion counts ``male_read_as_male`` … ``female_read_as_female``;
        ``male_read_as_female_rate`` = P(read female | male) and ``female_read_as_male_rate`` =
        P(read male | female), each with Wilson 95 % intervals (NaN where the group has no
        face of that gender, said in ``status``). An empty table, with the reason logged,
        when ``df`` has no ``prob_female`` or it is empty on every row.

    Reference: Wilson (1927) score interval, via ``dex_bias.stats.intervals.wilson_interval``.
    """
    empty = pd.DataFrame({column: pd.Series(dtype=object) for column in GENDER_METRIC_COLUMNS})
    if "prob_female" not in df.columns:
        logger.info("Gender metrics skipped: the predictions have no 'prob_female' column (no gender head)")
        return empty
    probability = pd.to_numeric(df["prob_female"], errors="coerce")
    usable = probability.notna()
    if not usable.any():
        logger.info("Gender metrics skipped: 'prob_female' is empty on all %d rows (no gender head)", len(df))
        return empty
    if (~usable).any():
        logger.warning("Gender metrics: %d of %d rows have no prob_female and are left out",
                       int((~usable).sum()), len(df))
    table = pd.DataFrame({
        "gender": df.loc[usable, "gender"].astype(int).to_numpy(),
        "race": df.loc[usable, "race"].astype(int).map(RACE_NAMES).to_numpy(),
        "age_band": age_bands(df.loc[usable, "age"].to_numpy(), bands).astype(str).to_numpy(),
        "guessed": predicted_gender(probability[usable]),
    })
    race_order = [RACE_NAMES[code] for code in sorted(RACE_NAMES)]
    band_order = list(age_bands([], bands).cat.categories)
    rows = [{"grouping": "overall", "group": "all", "race": "all", "age_band": "all",
             **_confusion_row(table["gender"].to_numpy(), table["guessed"].to_numpy(), min_n)}]
    for race in race_order:
        part = table[table["race"] == race]
        if len(part):
            rows.append({"grouping": "race", "group": race, "race": race, "age_band": "all",
                         **_confusion_row(part["gender"].to_numpy(), part["guessed"].to_numpy(), min_n)})
    for band in band_order:
        part = table[table["age_band"] == band]
        if len(part):
            rows.append({"grouping": "age_band", "group": band, "race": "all", "age_band": band,
                         **_confusion_row(part["gender"].to_numpy(), part["guessed"].to_numpy(), min_n)})
    for race in race_order:
        for band in band_order:
            part = table[(table["race"] == race) & (table["age_band"] == band)]
            if len(part):
                rows.append({"grouping": "race × age_band", "group": f"{race} × {band}", "race": race,
                             "age_band": band,
                             **_confusion_row(part["gender"].to_numpy(), part["guessed"].to_numpy(), min_n)})
    result = pd.DataFrame(rows, columns=list(GENDER_METRIC_COLUMNS))
    overall = result.iloc[0]
    logger.info("Gender accuracy on %d faces: %.3f [%.3f, %.3f]; %d groups",
                int(overall["n"]), overall["accuracy"], overall["accuracy_ci_low"],
                overall["accuracy_ci_high"], len(result))
    return result

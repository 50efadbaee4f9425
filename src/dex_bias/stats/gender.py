"""Gender-head accuracy per race × age band, with Wilson intervals.

UTKFace codes gender 0 male, 1 female. A gender head's ``prob_female`` is the probability of
code 1, so the predicted code is 1 (female) where ``prob_female >= 0.5`` and 0 (male) otherwise.
The second study ("Bias in Age & Gender Prediction CNN") swapped these codes; a test pins the
mapping here. That study reported 81 % accuracy on White faces against 62-66 % on Black, Asian
and Indian faces for a Wiki-trained model.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from dex_bias.stats.engine import Estimation, Metric, metric_frame
from dex_bias.utkface import RACE_NAMES, age_bands

logger = logging.getLogger(__name__)

#: ``prob_female`` at or above this reads as female (UTKFace code 1).
FEMALE_THRESHOLD = 0.5
MALE, FEMALE = 0, 1

GENDER_METRIC_COLUMNS: tuple[str, ...] = (
    "grouping",
    "group",
    "race",
    "age_band",
    "n",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "n_male",
    "n_female",
    "male_read_as_male",
    "male_read_as_female",
    "female_read_as_male",
    "female_read_as_female",
    "male_read_as_female_rate",
    "male_read_as_female_ci_low",
    "male_read_as_female_ci_high",
    "female_read_as_male_rate",
    "female_read_as_male_ci_low",
    "female_read_as_male_ci_high",
    "status",
)


def predicted_gender(prob_female: pd.Series | np.ndarray) -> np.ndarray:
    """UTKFace gender code from the gender head: 1 (female) where ``prob_female >= 0.5``, else 0 (male)."""
    return (np.asarray(prob_female, dtype=float) >= FEMALE_THRESHOLD).astype(int)


def _indicator_sum(values: np.ndarray) -> np.ndarray:
    return np.sum(values, axis=-1)


def _mean(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)


def gender_metrics(
    df: pd.DataFrame,
    *,
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """Accuracy, confusion matrix and both error rates of the gender head, by race × age band.

    Args:
        df: a prepared predictions table (``dex_bias.stats.contract.prepare_predictions``):
            ``gender`` (true, 0 male / 1 female), ``race`` (0-4), ``age`` (years) and
            ``prob_female`` (the gender head's probability of female).
        estimation: ``bands`` (inclusive age bands on true age), ``min_n`` (groups with fewer faces
            are flagged ``small_group`` in ``status``, as in the report) and ``confidence``.

    Returns:
        One row per group of the engine's groupings ``overall``, ``race``, ``age_band`` and
        ``race × age_band`` (columns ``GENDER_METRIC_COLUMNS``; ``race``/``age_band`` empty
        where the grouping does not use them): ``accuracy`` with its Wilson interval; the
        confusion counts ``male_read_as_male`` … ``female_read_as_female``;
        ``male_read_as_female_rate`` = P(read female | male) and ``female_read_as_male_rate`` =
        P(read male | female), each with Wilson intervals (NaN where the group has no face of
        that gender, said in ``status``). An empty table, with the reason logged, when ``df``
        has no ``prob_female`` or it is empty on every row.

    Reference: Wilson (1927) score interval (statsmodels), via ``dex_bias.stats.engine``.
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
        logger.warning(
            "Gender metrics: %d of %d rows have no prob_female and are left out", int((~usable).sum()), len(df)
        )
    true_gender = df.loc[usable, "gender"].astype(int).to_numpy()
    guessed = predicted_gender(probability[usable])
    table = pd.DataFrame(
        {
            "race": pd.Categorical(
                df.loc[usable, "race"].astype(int).map(RACE_NAMES).to_numpy(),
                categories=[RACE_NAMES[code] for code in sorted(RACE_NAMES)],
            ),
            "age_band": age_bands(df.loc[usable, "age"].to_numpy(), estimation.bands).to_numpy(),
            "correct": (guessed == true_gender).astype(float),
            "male": true_gender == MALE,
            "female": true_gender == FEMALE,
            "read_female": (guessed == FEMALE).astype(float),
            "read_male": (guessed == MALE).astype(float),
        }
    )
    for true_name, true_mask in (("male", true_gender == MALE), ("female", true_gender == FEMALE)):
        for read_name, read_code in (("male", MALE), ("female", FEMALE)):
            table[f"{true_name}_read_as_{read_name}"] = (true_mask & (guessed == read_code)).astype(float)
    features = ("race", "age_band")
    common = dict(intersections=True, estimation=estimation)
    counts = {
        name: Metric(_indicator_sum, (name,), interval="none")
        for name in ("male_read_as_male", "male_read_as_female", "female_read_as_male", "female_read_as_female")
    }
    frame = metric_frame(
        table, {"accuracy": Metric(_mean, ("correct",), interval="wilson"), **counts}, features, **common
    )
    male = metric_frame(
        table,
        {"male_read_as_female_rate": Metric(_mean, ("read_female",), interval="wilson")},
        features,
        where="male",
        **common,
    )
    female = metric_frame(
        table,
        {"female_read_as_male_rate": Metric(_mean, ("read_male",), interval="wilson")},
        features,
        where="female",
        **common,
    )
    frame["n_male"] = male["n"].to_numpy()
    frame["n_female"] = female["n"].to_numpy()
    for source, name in ((male, "male_read_as_female"), (female, "female_read_as_male")):
        frame[f"{name}_rate"] = source[f"{name}_rate"].to_numpy()
        for suffix in ("_ci_low", "_ci_high"):
            frame[name + suffix] = source[f"{name}_rate{suffix}"].to_numpy()
    status = []
    for row in frame.itertuples(index=False):
        flags = (
            []
            if row.status == "ok"
            else [
                f"{row.status} ({row.n} < {estimation.min_n}: wide interval)"
                if row.status == "small_group"
                else row.status
            ]
        )
        if row.n_male == 0:
            flags.append("no_male_faces (male error rate undefined)")
        if row.n_female == 0:
            flags.append("no_female_faces (female error rate undefined)")
        status.append("; ".join(flags) if flags else "ok")
    frame["status"] = status
    for name in counts:
        frame[name] = frame[name].astype(int)
    result = frame[list(GENDER_METRIC_COLUMNS)]
    overall = result.iloc[0]
    logger.info(
        "Gender accuracy on %d faces: %.3f [%.3f, %.3f]; %d groups",
        int(overall["n"]),
        overall["accuracy"],
        overall["accuracy_ci_low"],
        overall["accuracy_ci_high"],
        len(result),
    )
    return result

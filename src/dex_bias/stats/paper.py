"""The dex-model-analysis article's tables, made exactly as defined and labelled honestly.

- ``paper_normality_table`` (its Appendix A): per race × gender × band of true age (0-12, 13-18,
  19-25, 26-100, inclusive), over the predicted ages rounded to whole years (half up): n, mean,
  population SD, D'Agostino–Pearson K² and its p, and a chi-square goodness-of-fit statistic
  against a uniform distribution over the whole years from the cell's smallest to its largest
  rounded prediction, and its p. These test the *shape* of the predicted-age distribution in a
  cell, not bias: a small p says "not normal" (or "not uniform"), nothing about error. (The
  article's "normality passed" flag read the p-value the wrong way round.)
- ``paper_correlation_table`` (its Appendix B): Pearson r between each facial region's LIME
  weight and accuracy = (100 − |error|) / 100, per race × band, separately for accurate
  (|error| < 10 years) and inaccurate images, with p and a Benjamini–Hochberg FDR-adjusted p over
  the whole table (the article gave no p). Each image counts once per region (the article
  repeated records, inflating n).

References: D'Agostino & Pearson (1973), Biometrika 60; Pearson (1900) chi-square; Benjamini &
Hochberg (1995), JRSS B 57.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from dex_bias.stats.metrics import with_display_columns
from dex_bias.utkface import PAPER_AGE_BANDS

logger = logging.getLogger(__name__)

#: scipy's D'Agostino–Pearson test needs at least this many values.
NORMALTEST_MIN_N = 8
CORRELATION_MIN_N = 3


def round_half_up(values) -> np.ndarray:
    """Round to whole years, halves up (numpy's ``round`` sends halves to the even year)."""
    return np.floor(np.asarray(values, dtype=float) + 0.5)


def uniform_goodness_of_fit(rounded_ages) -> tuple[float, float, int]:
    """Chi-square GoF of whole-year counts against a uniform over [min, max]; (χ², p, dof)."""
    values = np.asarray(rounded_ages, dtype=int)
    counts = np.bincount(values - values.min())
    result = st.chisquare(counts)
    return float(result.statistic), float(result.pvalue), len(counts) - 1


def paper_normality_table(df: pd.DataFrame, bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS) -> pd.DataFrame:
    """The article's Appendix A, one row per race × gender × band (every cell, even empty).

    Columns: ``race``, ``gender``, ``age_band``, ``n``, ``mean_predicted_age``,
    ``sd_predicted_age`` (population, ddof 0), ``k2``, ``k2_p``, ``uniform_chi2``,
    ``uniform_dof``, ``uniform_p``, ``status`` (``ok``, or why a test could not run: fewer than
    8 values for K², one distinct value for the GoF).
    """
    table = with_display_columns(df, bands)
    table["rounded_prediction"] = round_half_up(table["predicted_age"])
    rows = []
    for race in table["race"].cat.categories:
        for gender in table["gender"].cat.categories:
            for band in table["age_band"].cat.categories:
                values = table.loc[(table["race"] == race) & (table["gender"] == gender)
                                   & (table["age_band"] == band), "rounded_prediction"].to_numpy()
                row = {"race": race, "gender": gender, "age_band": band, "n": len(values),
                       "mean_predicted_age": float(values.mean()) if len(values) else 0.0,
                       "sd_predicted_age": float(values.std(ddof=0)) if len(values) else 0.0,
                       "k2": np.nan, "k2_p": np.nan, "uniform_chi2": np.nan, "uniform_dof": 0,
                       "uniform_p": np.nan}
                notes = []
                if len(values) >= NORMALTEST_MIN_N and np.ptp(values) > 0:
                    k2 = st.normaltest(values)
                    row.update(k2=float(k2.statistic), k2_p=float(k2.pvalue))
                else:
                    notes.append(f"k2 not computed (n={len(values)}, needs {NORMALTEST_MIN_N} and spread)")
                if len(values) and np.ptp(values) > 0:
                    chi2, p, dof = uniform_goodness_of_fit(values)
                    row.update(uniform_chi2=chi2, uniform_p=p, uniform_dof=dof)
                else:
                    notes.append("uniform test not computed (fewer than two distinct values)")
                row["status"] = "; ".join(notes) or "ok"
                rows.append(row)
    return pd.DataFrame(rows)


def paper_correlation_table(
    predictions: pd.DataFrame,
    region_attributions: pd.DataFrame,
    *,
    method: str = "regions",
    bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS,
    accurate_below: float = 10.0,
) -> pd.DataFrame:
    """The article's Appendix B, one row per race × band × subset × region.

    Args:
        predictions: contract-checked predictions (``image_id``, ``age``, ``race``, ``predicted_age``).
        region_attributions: long table ``image_id``, ``method``, ``region``, ``weight``; only
            rows of ``method`` are used; a repeated (image, region) pair keeps its first row.
        accurate_below: |error| (years) below which an image counts as accurate.

    Returns:
        ``race``, ``age_band``, ``subset`` (``accurate``/``inaccurate``), ``region``, ``n``,
        ``pearson_r``, ``p``, ``p_fdr`` (Benjamini–Hochberg over the rows with a p), ``status``.
        An empty table (same columns) when there are no attributions.
    """
    columns = ["race", "age_band", "subset", "region", "n", "pearson_r", "p", "p_fdr", "status"]
    if region_attributions is None or region_attributions.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    attributions = region_attributions
    if "method" in attributions:
        attributions = attributions[attributions["method"] == method]
    attributions = attributions[["image_id", "region", "weight"]]
    repeated = attributions.duplicated(["image_id", "region"])
    if repeated.any():
        logger.info("paper_correlation_table: %d repeated (image, region) rows counted once", repeated.sum())
    attributions = attributions[~repeated]
    table = with_display_columns(predictions, bands)
    table["absolute_error"] = (table["predicted_age"] - table["age"]).abs()
    table["accuracy"] = (100.0 - table["absolute_error"]) / 100.0
    table["subset"] = np.where(table["absolute_error"] < accurate_below, "accurate", "inaccurate")
    merged = attributions.merge(table[["image_id", "race", "age_band", "subset", "accuracy"]],
                                on="image_id", how="inner", validate="many_to_one")
    unmatched = attributions["image_id"].nunique() - merged["image_id"].nunique()
    logger.info("paper_correlation_table: %d images with attributions and predictions, %d without predictions",
                merged["image_id"].nunique(), unmatched)
    rows = []
    for (race, band, subset, region), part in merged.groupby(["race", "age_band", "subset", "region"],
                                                            observed=True, sort=True):
        row = {"race": race, "age_band": band, "subset": subset, "region": region, "n": len(part),
               "pearson_r": np.nan, "p": np.nan}
        x, y = part["weight"].to_numpy(float), part["accuracy"].to_numpy(float)
        if len(part) < CORRELATION_MIN_N:
            row["status"] = f"too_small (n={len(part)} < {CORRELATION_MIN_N})"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            row["status"] = "constant (no correlation defined)"
        else:
            result = st.pearsonr(x, y)
            row.update(pearson_r=float(result.statistic), p=float(result.pvalue), status="ok")
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns[:-2] + ["status"]) if rows else pd.DataFrame(columns=columns)
    out["p_fdr"] = np.nan
    tested = out["status"] == "ok"
    if tested.any():
        out.loc[tested, "p_fdr"] = st.false_discovery_control(out.loc[tested, "p"].to_numpy(float), method="bh")
    return out[columns]

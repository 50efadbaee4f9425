"""The dex-model-analysis article's tables, computed as the article computed them and labelled for
what they measure; and our own region-weight correlations, in a table of their own.

``paper_normality_table`` (the article's Appendix A), per race × gender × band of true age
(0-12, 13-18, 19-25, 26-100, inclusive), over the predicted ages rounded to whole years the way
Python's ``round`` rounds (halves to the even year):

- ``n``, ``mean_predicted_age``, ``sd_predicted_age`` (population SD, ddof 0);
- ``k2``, ``k2_p``: D'Agostino–Pearson's omnibus K² (``scipy.stats.normaltest``) of the rounded
  predictions: a test of the *shape* of their distribution (is it normal?), nothing about error
  or bias. The article read a small p as "normality passed"; it means the opposite;
- ``dispersion_chi2``, ``dispersion_dof``, ``dispersion_p``: the article's chi-square column.
  The article passed the list of rounded predictions itself to ``scipy.stats.chisquare``, which
  reads each value as an observed count against their mean: Σ(x − x̄)² / x̄ = (n − 1) s² / x̄ on
  n − 1 degrees of freedom. That is the index of dispersion of Poisson counts (variance over
  mean, times n − 1): it grows with the spread of the predictions relative to their mean, and its
  p-value tests "these numbers are Poisson counts with one mean", which ages are not. It is no
  test of bias or of fit; it is reproduced so the article's table can be checked. (The article's
  code computed it only where K² ran, n ≥ 8; it is given here wherever it is defined.)

``paper_correlation_table`` (the article's Appendix B), from the article's own method where its
explanations exist (``region_attributions`` rows of ``method: quickshift``, whose ``weight`` is
the share of a landmark region's pixels that LIME over quickshift segments weighted positively;
how LIME was run for them, samples, target and hidden colour, is the explain pipeline's setting):
five features per image, ``face`` (the mean of the nine inner regions' shares) and the four outer
bands (the article's ``outer_boundary_left`` is the band on the *image's* left, our
``right_band``), renormalised the way the article did (below), correlated (Pearson) with
accuracy = (100 − |error|) / 100 per race × band, separately for accurate images (accuracy > 0.9,
the article's "positive" set) and the rest. Each image counts once (the article repeated records
of small cohorts to the size of the largest, which changes r and inflates n); p and a
Benjamini–Hochberg FDR-adjusted p are ours (the article gave none).

The article renormalised the five features in a loop that divides each, in the order face, left,
right, top, bottom, by the sum of all five *as they stand at that step* (earlier ones already
divided), so they do not sum to 1. ``renormalisation: sequential`` (the default) reproduces that;
``sum_to_one`` divides all five by their original sum, as the article described it.

``region_weight_correlations`` is ours, not the article's: Pearson r between each facial region's
LIME surrogate weight (``method: regions``, years of expected age) and accuracy, per race × band ×
subset. It answers a related but different question and must not be read as Appendix B.

References: D'Agostino & Pearson (1973), Biometrika 60; Fisher (1950) and Cochran (1954) on the
index of dispersion; Ribeiro, Singh & Guestrin (2016), "Why should I trust you?" (LIME); Pearson
(1896); Benjamini & Hochberg (1995), JRSS B 57.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from dex_bias.explain.attributions import REGION_NAMES, method_weights
from dex_bias.stats.metrics import with_display_columns
from dex_bias.utkface import PAPER_AGE_BANDS

logger = logging.getLogger(__name__)

#: scipy's D'Agostino–Pearson test needs at least this many values.
NORMALTEST_MIN_N = 8
CORRELATION_MIN_N = 3
#: The nine inner regions whose mean share is the article's ``face`` feature.
INNER_REGIONS: tuple[str, ...] = REGION_NAMES[: REGION_NAMES.index("chin") + 1]
#: The article's outer features and our bands: its left and right are the image's, ours the subject's.
OUTER_FEATURES: dict[str, str] = {
    "outer_boundary_left": "right_band",
    "outer_boundary_right": "left_band",
    "outer_boundary_top": "top_band",
    "outer_boundary_bottom": "bottom_band",
}
ARTICLE_FEATURES: tuple[str, ...] = ("face", *OUTER_FEATURES)
NORMALITY_COLUMNS = (
    "race",
    "gender",
    "age_band",
    "n",
    "mean_predicted_age",
    "sd_predicted_age",
    "k2",
    "k2_p",
    "dispersion_chi2",
    "dispersion_dof",
    "dispersion_p",
    "status",
)
CORRELATION_COLUMNS = ("race", "age_band", "subset", "feature", "n", "pearson_r", "p", "p_fdr", "status")
REGION_CORRELATION_COLUMNS = ("race", "age_band", "subset", "region", "n", "pearson_r", "p", "p_fdr", "status")


def round_like_python(values) -> np.ndarray:
    """Whole years as Python's ``round`` gives them: nearest, halves to the even year (numpy's ``rint``)."""
    return np.rint(np.asarray(values, dtype=float))


def dispersion_chi_square(values) -> tuple[float, float, int]:
    """The article's chi-square: ``scipy.stats.chisquare(values)``, each value an observed count.

    Returns ``(statistic, p, dof)`` with statistic Σ(x − x̄)² / x̄ on ``n − 1`` degrees of freedom;
    NaN for fewer than two values or a mean of 0.
    """
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or x.mean() <= 0:
        return float("nan"), float("nan"), max(len(x) - 1, 0)
    result = st.chisquare(x)
    return float(result.statistic), float(result.pvalue), len(x) - 1


def paper_normality_table(df: pd.DataFrame, bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS) -> pd.DataFrame:
    """The article's Appendix A, one row per race × gender × band (every cell, even empty).

    Columns ``NORMALITY_COLUMNS``; ``status`` is ``ok`` or says what could not be computed and why
    (fewer than 8 values or no spread for K²; fewer than two values or a zero mean for the
    dispersion chi-square; an empty cell). Means and SDs of an empty cell are NaN, not 0.
    """
    table = with_display_columns(df, bands)
    table["rounded_prediction"] = round_like_python(table["predicted_age"])
    rows = []
    for race in table["race"].cat.categories:
        for gender in table["gender"].cat.categories:
            for band in table["age_band"].cat.categories:
                values = table.loc[
                    (table["race"] == race) & (table["gender"] == gender) & (table["age_band"] == band),
                    "rounded_prediction",
                ].to_numpy()
                row = {
                    "race": race,
                    "gender": gender,
                    "age_band": band,
                    "n": len(values),
                    "mean_predicted_age": float(values.mean()) if len(values) else np.nan,
                    "sd_predicted_age": float(values.std(ddof=0)) if len(values) else np.nan,
                    "k2": np.nan,
                    "k2_p": np.nan,
                    "dispersion_chi2": np.nan,
                    "dispersion_dof": max(len(values) - 1, 0),
                    "dispersion_p": np.nan,
                }
                notes = []
                if len(values) == 0:
                    notes.append("no cases")
                elif len(values) >= NORMALTEST_MIN_N and np.ptp(values) > 0:
                    k2 = st.normaltest(values)
                    row.update(k2=float(k2.statistic), k2_p=float(k2.pvalue))
                else:
                    notes.append(f"k2 not computed (n={len(values)}, needs {NORMALTEST_MIN_N} values with spread)")
                if len(values):
                    chi2, p, dof = dispersion_chi_square(values)
                    if np.isfinite(chi2):
                        row.update(dispersion_chi2=chi2, dispersion_p=p, dispersion_dof=dof)
                    else:
                        notes.append("dispersion chi-square not computed (needs two values and a mean above 0)")
                row["status"] = "; ".join(notes) or "ok"
                rows.append(row)
    return pd.DataFrame(rows, columns=list(NORMALITY_COLUMNS))


def article_features(activations: pd.DataFrame, renormalisation: str = "sequential") -> pd.DataFrame:
    """The article's five features per image from region activations (one column per region).

    Args:
        activations: index ``image_id``, one column per region name (``INNER_REGIONS`` and the
            four bands), each the share (0-1) of the region's pixels LIME weighted positively.
        renormalisation: ``sequential`` (as the article's code did it: each feature in turn
            divided by the current sum of all five) or ``sum_to_one`` (all divided by the
            original sum).

    Returns:
        ``ARTICLE_FEATURES`` columns, one row per image whose five raw features sum above 0
        (an image with no positive pixel anywhere has no share to renormalise and is dropped).
    """
    if renormalisation not in ("sequential", "sum_to_one"):
        raise ValueError(f"renormalisation must be 'sequential' or 'sum_to_one', not {renormalisation!r}")
    missing = [r for r in (*INNER_REGIONS, *OUTER_FEATURES.values()) if r not in activations.columns]
    if missing:
        raise KeyError(f"activations lack region(s) {missing}")
    raw = pd.DataFrame({"face": activations[list(INNER_REGIONS)].mean(axis=1)}, index=activations.index)
    for feature, region in OUTER_FEATURES.items():
        raw[feature] = activations[region]
    raw = raw[raw.sum(axis=1) > 0]
    values = raw.to_numpy(float).copy()
    if renormalisation == "sum_to_one":
        values /= values.sum(axis=1, keepdims=True)
    else:
        for column in range(values.shape[1]):
            values[:, column] /= values.sum(axis=1)
    return pd.DataFrame(values, index=raw.index, columns=list(ARTICLE_FEATURES))


def _correlations(merged: pd.DataFrame, keys: list[str], value: str, columns: Sequence[str]) -> pd.DataFrame:
    """Pearson r of ``value`` with accuracy per ``keys`` group, with p and BH-adjusted p over the table."""
    rows = []
    for key, part in merged.groupby(keys, observed=True, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(n=len(part), pearson_r=np.nan, p=np.nan)
        x, y = part[value].to_numpy(float), part["accuracy"].to_numpy(float)
        if len(part) < CORRELATION_MIN_N:
            row["status"] = f"too_small (n={len(part)} < {CORRELATION_MIN_N})"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            row["status"] = "constant (no correlation defined)"
        else:
            result = st.pearsonr(x, y)
            row.update(pearson_r=float(result.statistic), p=float(result.pvalue), status="ok")
        rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=list(columns))
    tested = out["status"] == "ok"
    if tested.any():
        out.loc[tested, "p_fdr"] = st.false_discovery_control(out.loc[tested, "p"].to_numpy(float), method="bh")
    return out


def _accuracy_table(predictions: pd.DataFrame, bands, accurate_above: float) -> pd.DataFrame:
    table = with_display_columns(predictions, bands)
    table["accuracy"] = (100.0 - (table["predicted_age"] - table["age"]).abs()) / 100.0
    table["subset"] = np.where(table["accuracy"] > accurate_above, "accurate", "inaccurate")
    return table[["image_id", "race", "age_band", "subset", "accuracy"]]


def paper_correlation_table(
    predictions: pd.DataFrame,
    region_attributions: pd.DataFrame,
    *,
    bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS,
    accurate_above: float = 0.9,
    renormalisation: str = "sequential",
    method: str = "quickshift",
) -> pd.DataFrame:
    """The article's Appendix B, one row per race × band × subset × feature (``CORRELATION_COLUMNS``).

    Args:
        predictions: contract-checked predictions (``image_id``, ``age``, ``race``, ``predicted_age``).
        region_attributions: long table ``image_id``, ``method``, ``region``, ``weight``; rows of
            ``method`` (the article's quickshift activations) are used, a repeated
            (image, region) pair once.
        accurate_above: accuracy above which an image is in the ``accurate`` subset (0.9: an
            error under 10 years).
        renormalisation: ``sequential`` (the article's code) or ``sum_to_one``.

    Returns:
        ``race``, ``age_band``, ``subset``, ``feature`` (``face``, ``outer_boundary_left`` …),
        ``n``, ``pearson_r``, ``p``, ``p_fdr``, ``status``. An empty table (same columns) when
        no image has the method's explanations.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in CORRELATION_COLUMNS})
    rows = method_weights(region_attributions, method)
    if rows.empty:
        return empty
    activations = rows.pivot(index="image_id", columns="region", values="weight")
    complete = activations.reindex(columns=[*INNER_REGIONS, *OUTER_FEATURES.values()]).dropna()
    features = article_features(complete, renormalisation)
    dropped = len(activations) - len(features)
    if dropped:
        logger.info(
            "paper_correlation_table: %d of %d explained images left out (a region missing, or no "
            "positively weighted pixel at all)",
            dropped,
            len(activations),
        )
    long = features.reset_index().melt(id_vars="image_id", var_name="feature", value_name="share")
    merged = long.merge(_accuracy_table(predictions, bands, accurate_above), on="image_id", how="inner")
    merged["feature"] = pd.Categorical(merged["feature"], categories=list(ARTICLE_FEATURES), ordered=True)
    return _correlations(merged, ["race", "age_band", "subset", "feature"], "share", CORRELATION_COLUMNS)


def region_weight_correlations(
    predictions: pd.DataFrame,
    region_attributions: pd.DataFrame,
    *,
    method: str = "regions",
    bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS,
    accurate_above: float = 0.9,
) -> pd.DataFrame:
    """Ours, not the article's: Pearson r of each region's LIME weight with accuracy (``REGION_CORRELATION_COLUMNS``).

    One row per race × band × subset × region, over ``method`` rows (``regions``: surrogate
    weights in years of expected age), each image once; p and BH-adjusted p over the table. An
    empty table when there are no such attributions.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in REGION_CORRELATION_COLUMNS})
    rows = method_weights(region_attributions, method)
    if rows.empty:
        return empty
    merged = rows.merge(
        _accuracy_table(predictions, bands, accurate_above), on="image_id", how="inner", validate="many_to_one"
    )
    return _correlations(merged, ["race", "age_band", "subset", "region"], "weight", REGION_CORRELATION_COLUMNS)

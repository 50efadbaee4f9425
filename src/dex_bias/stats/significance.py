"""Between-group tests of age-estimation error (pingouin), with Holm correction and effect sizes.

All tests run on the absolute error ``|predicted − true|`` in years, except the chi-square tests
of age-gate outcomes. Families and corrections:

- ``omnibus``: Kruskal–Wallis (effect size ε² = H / (n − 1)) and Welch's ANOVA (partial η²)
  across the groups of a feature within each age band; p Holm-corrected over the bands.
- ``pairwise``: Mann–Whitney U (common-language effect size) with Holm over the pairs of a band;
  Games–Howell (Hedges' g), whose p is already family-wise adjusted by the studentized range.
- ``group_vs_rest``: each group against everyone else, two-sided Mann–Whitney on the
  *age-adjusted* absolute error (a row's absolute error minus the mean absolute error of all rows
  in the same age band of true age, so that groups with different age mixes compare fairly);
  Holm over the groups of a feature. ``difference`` is the group's mean minus the rest's, in
  years, with a percentile-bootstrap interval; ``worse`` marks a significantly larger error.
  This is the family the report's findings and the planted-bias check use.
- ``gate_chi_square``: for each challenge age and gate measure, Pearson's chi-square test of
  independence of the gate outcome and the group (no continuity correction; Cramér's V);
  Holm over the challenge ages and measures of a feature.

A group with fewer than ``min_n`` rows is left out of a test and gets a row with status
``too_small``; a test left with fewer than two groups gets status ``too_few_groups``. Nothing
is reported as a bare NaN.

References: Kruskal & Wallis (1952); Welch (1951); Mann & Whitney (1947); Games & Howell (1976);
Holm (1979), Scand. J. Statist. 6; Vallat (2018), "Pingouin: statistics in Python", JOSS 3(31).
"""

from __future__ import annotations

import logging
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import pingouin as pg

from dex_bias.stats.gates import gate_outcomes
from dex_bias.stats.intervals import bootstrap_ci
from dex_bias.stats.metrics import with_display_columns
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

COLUMNS = (
    "family", "test", "feature", "age_band", "challenge_age", "measure", "group", "group_b",
    "n", "n_b", "statistic", "dof", "p_unc", "p_corr", "correction", "effect_size",
    "effect_size_name", "difference", "difference_ci_low", "difference_ci_high", "worse", "status",
)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out and stay NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if len(valid) == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _with_errors(df: pd.DataFrame, bands) -> pd.DataFrame:
    table = with_display_columns(df, bands)
    table["absolute_error"] = (table["predicted_age"] - table["age"]).abs()
    # Adjust within age bands, not single years: year cells are small, and their noisy means
    # (which include the row itself) cost the group-vs-rest test most of its power.
    table["age_adjusted_error"] = table["absolute_error"] - table.groupby(
        "age_band", observed=True)["absolute_error"].transform("mean")
    return table


def _usable(part: pd.DataFrame, feature: str, min_n: int, base: dict) -> tuple[pd.DataFrame, list[dict]]:
    """Rows of groups large enough for a test, and ``too_small`` rows for the others."""
    sizes = part[feature].astype(str).value_counts()
    small = sizes[sizes < min_n]
    rows = [dict(base, group=str(group), n=int(size), status=f"too_small (n={size} < {min_n})")
            for group, size in small.items() if size > 0]
    return part[part[feature].astype(str).isin(sizes[sizes >= min_n].index)], rows


def _omnibus_and_pairwise(table: pd.DataFrame, feature: str, band: str, min_n: int) -> list[dict]:
    rows: list[dict] = []
    base = {"feature": feature, "age_band": band}
    part, small = _usable(table, feature, min_n, dict(base, family="omnibus", test="kruskal"))
    rows += small
    part = part.assign(**{feature: part[feature].astype(str)})
    groups = part[feature].nunique()
    if groups < 2:
        for family, test in (("omnibus", "kruskal"), ("omnibus", "welch_anova")):
            rows.append(dict(base, family=family, test=test, n=len(part),
                             status=f"too_few_groups ({groups} with n >= {min_n})"))
        return rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kruskal = pg.kruskal(part, dv="absolute_error", between=feature).iloc[0]
        welch = pg.welch_anova(part, dv="absolute_error", between=feature).iloc[0]
        mann_whitney = pg.pairwise_tests(part, dv="absolute_error", between=feature, parametric=False,
                                         padjust="holm", effsize="cles")
        games_howell = pg.pairwise_gameshowell(part, dv="absolute_error", between=feature, effsize="hedges")
    n = len(part)
    rows.append(dict(base, family="omnibus", test="kruskal", n=n, statistic=float(kruskal["H"]),
                     dof=float(kruskal["ddof1"]), p_unc=float(kruskal["p_unc"]),
                     effect_size=float(kruskal["H"]) / (n - 1), effect_size_name="epsilon_squared", status="ok"))
    rows.append(dict(base, family="omnibus", test="welch_anova", n=n, statistic=float(welch["F"]),
                     dof=float(welch["ddof2"]), p_unc=float(welch["p_unc"]),
                     effect_size=float(welch["np2"]), effect_size_name="partial_eta_squared", status="ok"))
    sizes = part[feature].value_counts()
    means = part.groupby(feature)["absolute_error"].mean()
    for pair in mann_whitney.itertuples(index=False):
        a, b = str(pair.A), str(pair.B)
        rows.append(dict(base, family="pairwise", test="mann_whitney", group=a, group_b=b,
                         n=int(sizes[a]), n_b=int(sizes[b]), statistic=float(pair.U_val),
                         p_unc=float(pair.p_unc), p_corr=float(getattr(pair, "p_corr", pair.p_unc)),
                         correction="holm", effect_size=float(pair.cles), effect_size_name="cles",
                         difference=float(means[a] - means[b]), status="ok"))
    for pair in games_howell.itertuples(index=False):
        a, b = str(pair.A), str(pair.B)
        rows.append(dict(base, family="pairwise", test="games_howell", group=a, group_b=b,
                         n=int(sizes[a]), n_b=int(sizes[b]), statistic=float(pair.T), dof=float(pair.df),
                         p_unc=float(pair.pval), p_corr=float(pair.pval), correction="studentized_range",
                         effect_size=float(pair.hedges), effect_size_name="hedges_g",
                         difference=float(pair.diff), status="ok"))
    return rows


def _group_vs_rest(table: pd.DataFrame, feature: str, min_n: int, n_boot: int, seed: int,
                   confidence: float) -> list[dict]:
    rows: list[dict] = []
    labels = table[feature].astype(str)
    for index, group in enumerate(sorted(labels.unique())):
        inside = table.loc[labels == group, "age_adjusted_error"].to_numpy(float)
        rest = table.loc[labels != group, "age_adjusted_error"].to_numpy(float)
        row = dict(family="group_vs_rest", test="mann_whitney", feature=feature, age_band="all",
                   group=group, group_b="rest", n=len(inside), n_b=len(rest))
        if len(inside) < min_n or len(rest) < min_n:
            rows.append(dict(row, status=f"too_small (n={len(inside)} vs {len(rest)}, need {min_n})"))
            continue
        result = pg.mwu(inside, rest, alternative="two-sided").iloc[0]
        # Interval of the mean difference: each side resampled on its own (independent samples).
        rng = np.random.default_rng(seed + index)
        replicates = [rng.choice(inside, len(inside)).mean() - rng.choice(rest, len(rest)).mean()
                      for _ in range(n_boot)]
        low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
        rows.append(dict(row, statistic=float(result["U_val"]), p_unc=float(result["p_val"]),
                         effect_size=float(result["CLES"]), effect_size_name="cles",
                         difference=float(inside.mean() - rest.mean()),
                         difference_ci_low=float(low), difference_ci_high=float(high), status="ok"))
    return rows


def _gate_chi_square(table: pd.DataFrame, feature: str, challenge_ages: Sequence[float], min_n: int) -> list[dict]:
    rows = []
    for measure in ("minors_accepted", "adults_challenged"):
        for challenge_age in challenge_ages:
            counted, event = gate_outcomes(table, challenge_age, measure)
            part = pd.DataFrame({"group": table.loc[counted, feature].astype(str),
                                 "outcome": event[counted].map({True: "event", False: "no_event"})})
            sizes = part["group"].value_counts()
            part = part[part["group"].isin(sizes[sizes >= min_n].index)]
            row = dict(family="gate_chi_square", test="chi2_independence", feature=feature, age_band="all",
                       challenge_age=float(challenge_age), measure=measure, n=len(part))
            small = ", ".join(f"{g} (n={s})" for g, s in sizes[sizes < min_n].items())
            if part["group"].nunique() < 2 or part["outcome"].nunique() < 2:
                reason = "too_few_groups" if part["group"].nunique() < 2 else "no_variation"
                rows.append(dict(row, status=reason + (f"; left out as too small: {small}" if small else "")))
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, _, result = pg.chi2_independence(part, x="group", y="outcome", correction=False)
            pearson = result[result["test"] == "pearson"].iloc[0]
            rows.append(dict(row, statistic=float(pearson["chi2"]), dof=float(pearson["dof"]),
                             p_unc=float(pearson["pval"]), effect_size=float(pearson["cramer"]),
                             effect_size_name="cramers_v",
                             status="ok" + (f"; left out as too small: {small}" if small else "")))
    return rows


def significance_tests(
    df: pd.DataFrame,
    *,
    features: Sequence[str] = ("race", "gender"),
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
    challenge_ages: Sequence[float] = (18, 21, 25),
    min_n: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every between-group test of the audit, one row per test (or per pair), ``COLUMNS`` order.

    Args:
        df: a contract-checked predictions table (``age``, ``gender``, ``race`` codes,
            ``predicted_age`` years).
        features: sensitive features compared (``race``, ``gender``).
        bands: inclusive ``(low, high)`` age bands (years of true age) for the per-band tests.
        min_n: smallest group a test takes.
        alpha: significance level of the ``worse`` flag (``group_vs_rest`` rows).

    Returns:
        The ``COLUMNS`` table; ``p_corr`` is the corrected p named in ``correction``.
    """
    table = _with_errors(df, bands)
    rows: list[dict] = []
    for feature in features:
        omnibus_start = len(rows)
        for band in table["age_band"].cat.categories:
            part = table[table["age_band"] == band]
            rows += _omnibus_and_pairwise(part, feature, str(band), min_n)
        for test in ("kruskal", "welch_anova"):
            family = [i for i in range(omnibus_start, len(rows))
                      if rows[i].get("family") == "omnibus" and rows[i].get("test") == test and rows[i].get("status") == "ok"]
            for i, p in zip(family, holm([rows[i]["p_unc"] for i in family])):
                rows[i].update(p_corr=float(p), correction="holm")
        start = len(rows)
        rows += _group_vs_rest(table, feature, min_n, n_boot, seed, confidence)
        tested = [i for i in range(start, len(rows)) if rows[i]["status"] == "ok"]
        for i, p in zip(tested, holm([rows[i]["p_unc"] for i in tested])):
            rows[i].update(p_corr=float(p), correction="holm",
                           worse=bool(p < alpha and rows[i]["difference"] > 0))
        start = len(rows)
        rows += _gate_chi_square(table, feature, challenge_ages, min_n)
        tested = [i for i in range(start, len(rows)) if str(rows[i]["status"]).startswith("ok")]
        for i, p in zip(tested, holm([rows[i]["p_unc"] for i in tested])):
            rows[i].update(p_corr=float(p), correction="holm")
    result = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    result["worse"] = result["worse"].astype("boolean").fillna(False).astype(bool)
    for column in ("age_band", "measure", "group", "group_b", "correction", "effect_size_name"):
        result[column] = result[column].astype(object).fillna("").astype(str)
    logger.info("significance_tests: %d rows, %d ok, %d flagged worse", len(result),
                result["status"].str.startswith("ok").sum(), result["worse"].sum())
    return result


def flagged_groups(tests: pd.DataFrame, feature: str = "race", alpha: float = 0.05) -> list[str]:
    """Groups of ``feature`` whose error is significantly larger than the rest's (Holm p < alpha)."""
    rows = tests[(tests["family"] == "group_vs_rest") & (tests["feature"] == feature) & (tests["status"] == "ok")]
    return sorted(rows.loc[(rows["p_corr"] < alpha) & (rows["difference"] > 0), "group"])

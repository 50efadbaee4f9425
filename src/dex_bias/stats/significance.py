"""Between-group tests of age-estimation error and age-gate outcomes that hold their size under
confounding by age mix.

Groups differ in age mix, and error depends on age, so every test here compares like with like:
the effect it states is a **stratum-standardised difference** (``dex_bias.stats.permutation``)
within strata of true age × gender (× the other sensitive feature's value where that is gender:
a gender test is stratified by age alone), the p-value comes from permuting the values within
those strata (so it is exact, up to Monte-Carlo error, whatever the groups' age mixes), the
interval from a bootstrap of the same standardised statistic, and the direction is that
statistic's sign. ``dex_bias.stats.calibration`` and the test suite check by simulation that
each family rejects at its nominal rate when error depends on age only.

Families (``family`` column) and the multiple-comparison correction each gets:

- ``group_vs_rest``: each group of a feature against everyone else, for ``outcome``
  ``absolute_error`` (the headline: "this group's estimates are further off than those of
  other people of the same age and gender") and ``signed_error`` (aged up or down). Holm over
  the groups of one feature for one outcome (``holm_family`` names it and its size). ``worse``
  marks a Holm-significant positive difference in absolute error.
- ``omnibus``: do the groups of a feature differ at all? Statistic ``Σ ω_g d_g²`` over the
  group-vs-rest differences d (ω ∝ rows used), from the same permutations. Holm over the
  features, per outcome.
- ``pairwise``: group A against group B (absolute error), standardised to A's strata. Holm over
  the pairs of a feature.
- ``gate_vs_rest``: each group against the rest for a gate outcome (``minors_accepted``: a true
  minor estimated at or above the challenge age; ``adults_challenged``: a young adult 18-24
  estimated below it), the stratified difference in rates (a permutation test, so sparse tables
  with expected counts of 1-2 are handled exactly rather than by a chi-square approximation).
  Holm over groups × challenge ages × measures of a feature.

Rows that cannot be tested keep a status and no p-value (``too_small``: fewer than ``min_n``
rows of a side in strata the other side also has; ``no_variation``: every value is equal;
``too_few_groups``). Nothing is a bare NaN.

References: Good (2005), Permutation, Parametric and Bootstrap Tests of Hypotheses; Phipson &
Smyth (2010), Stat. Appl. Genet. Mol. Biol. 9(1); Holm (1979), Scand. J. Statist. 6; Vallat
(2018), "Pingouin: statistics in Python", JOSS 3(31) (``pingouin.multicomp``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pingouin as pg

from dex_bias.stats.engine import Estimation, row_seed
from dex_bias.stats.gates import gate_outcomes
from dex_bias.stats.metrics import with_display_columns
from dex_bias.stats.permutation import (
    Contrast,
    bootstrap_difference_interval,
    permutation_test,
    standardised_contrast,
)

logger = logging.getLogger(__name__)

COLUMNS = (
    "family",
    "test",
    "feature",
    "outcome",
    "challenge_age",
    "measure",
    "group",
    "group_b",
    "n",
    "n_b",
    "n_used",
    "n_b_used",
    "strata_used",
    "statistic",
    "p_unc",
    "p_corr",
    "correction",
    "holm_family",
    "holm_family_size",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "direction",
    "worse",
    "status",
)
OUTCOMES = ("absolute_error", "signed_error")
GATE_TEST_MEASURES = ("minors_accepted", "adults_challenged")
TEST_NAME = "stratified_permutation"


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (``pingouin.multicomp``); NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0 or np.all(np.isnan(p)):
        return np.full(p.shape, np.nan)
    _, adjusted = pg.multicomp(p, method="holm")
    return np.asarray(adjusted, dtype=float)


def age_strata(age: np.ndarray, years: int) -> np.ndarray:
    """Stratum of true age: whole years floored to blocks of ``years`` (0-4, 5-9, … for 5)."""
    return (np.floor(np.asarray(age, float)) // max(int(years), 1)).astype(np.int64)


def strata_for(table: pd.DataFrame, feature: str, years: int) -> np.ndarray:
    """Strata of true age × gender for comparing the groups of ``feature`` (age alone for gender)."""
    age = age_strata(table["age"].to_numpy(float), years)
    if feature == "gender" or "gender" not in table:
        return age
    gender = pd.Series(table["gender"]).astype(str).map({"male": 0, "female": 1, "0": 0, "1": 1}).fillna(2)
    return age * 3 + gender.to_numpy(dtype=np.int64)


def _describe_effect(contrast: Contrast, min_n: int) -> str | None:
    """Why a contrast cannot be tested, or None when it can."""
    if contrast.n_group_used < min_n or contrast.n_other_used < min_n:
        return (
            f"too_small (n={contrast.n_group_used} vs {contrast.n_other_used} rows in strata both sides "
            f"have, need {min_n}; {contrast.n_group} vs {contrast.n_other} in all)"
        )
    return None


def _contrast_rows(
    values: np.ndarray,
    strata: np.ndarray,
    labels: np.ndarray,
    groups: Sequence[str],
    pairs: Sequence[tuple[str, str | None]],
    *,
    min_n: int,
    n_perm: int,
    n_boot: int,
    seed: int,
    confidence: float,
    base: dict,
    family: str,
) -> tuple[list[dict], float, float, int]:
    """Test each (group, comparison) pair (comparison None = the rest) on one shared permutation set.

    Returns the rows, the omnibus statistic and p over the group-vs-rest contrasts, and the rows used.
    """
    contrasts, rows, testable, sides = [], [], [], []
    finite = np.isfinite(values)
    for group, other in pairs:
        in_group = (labels == group) & finite
        in_other = ((labels == other) if other is not None else (labels != group)) & finite
        contrast = standardised_contrast(in_group, in_other, strata)
        row = dict(
            base,
            family=family,
            test=TEST_NAME,
            group=group,
            group_b=other or "rest",
            n=contrast.n_group,
            n_b=contrast.n_other,
            n_used=contrast.n_group_used,
            n_b_used=contrast.n_other_used,
            strata_used=contrast.strata_used,
        )
        reason = _describe_effect(contrast, min_n)
        if reason is None and np.ptp(values[(contrast.coefficient != 0)]) == 0:
            reason = "no_variation (every value in the compared strata is the same)"
        if reason:
            row["status"] = reason
        else:
            testable.append(len(rows))
            contrasts.append(contrast)
            sides.append((in_group, in_other))
        rows.append(row)
    omnibus_statistic, omnibus_p, used = float("nan"), float("nan"), 0
    if contrasts:
        coefficients = np.column_stack([c.coefficient for c in contrasts])
        weights = np.array([c.n_group_used for c in contrasts], float)
        rng = row_seed(
            seed,
            base.get("feature"),
            base.get("outcome"),
            base.get("measure"),
            base.get("challenge_age"),
            family,
            *itertools.chain.from_iterable(pairs),
        )
        safe = np.where(finite, values, 0.0)
        result = permutation_test(
            safe, strata, coefficients, n_perm=n_perm, rng=rng, omnibus_weights=weights / weights.sum()
        )
        omnibus_statistic, omnibus_p = result.omnibus_statistic, result.omnibus_p
        used = int(np.any(coefficients != 0, axis=1).sum())
        for position, (in_group, in_other), effect, p in zip(testable, sides, result.effects, result.p_values):
            low, high = bootstrap_difference_interval(
                safe, in_group, in_other, strata, n_boot=n_boot, rng=rng, confidence=confidence
            )
            rows[position].update(
                statistic=float(effect),
                p_unc=float(p),
                difference=float(effect),
                difference_ci_low=low,
                difference_ci_high=high,
                status="ok",
            )
    return rows, omnibus_statistic, omnibus_p, used


def _apply_holm(rows: list[dict], indices: Sequence[int], family_name: str, alpha: float, flag_worse: bool) -> None:
    tested = [i for i in indices if rows[i].get("status") == "ok"]
    adjusted = holm([rows[i]["p_unc"] for i in tested])
    for i, p in zip(tested, adjusted):
        significant = bool(p < alpha)
        difference = rows[i].get("difference", float("nan"))
        if not significant:
            direction = "no_difference_found"
        elif np.isfinite(difference):
            direction = "higher" if difference > 0 else "lower"
        else:  # an omnibus test says that groups differ, not which way
            direction = "groups_differ"
        rows[i].update(
            p_corr=float(p),
            correction="holm",
            holm_family=family_name,
            holm_family_size=len(tested),
            direction=direction,
            worse=bool(flag_worse and significant and difference > 0),
        )
    for i in indices:
        if rows[i].get("status") != "ok":
            rows[i].update(holm_family=family_name, holm_family_size=len(tested))


def significance_tests(
    df: pd.DataFrame,
    *,
    features: Sequence[str] = ("race", "gender"),
    outcomes: Sequence[str] = OUTCOMES,
    challenge_ages: Sequence[float] = (18, 21, 25),
    stratum_years: int = 5,
    gate_stratum_years: int = 1,
    pairwise: bool = True,
    n_perm: int = 2000,
    estimation: Estimation = Estimation(min_n=10),
    alpha: float = 0.05,
    outer: str | None = None,
) -> pd.DataFrame:
    """Every between-group test of the audit, one row per test, ``COLUMNS`` order.

    Args:
        df: a contract-checked predictions table (``age``, ``gender``, ``race`` codes or names,
            ``predicted_age`` years).
        features: sensitive features whose groups are compared (``race``, ``gender``).
        outcomes: per-row values compared: ``absolute_error`` and/or ``signed_error`` (years).
        challenge_ages: τ (years) of the gate tests.
        stratum_years: width (years of true age) of the strata of the error tests.
        gate_stratum_years: width of the strata of the gate tests (gate outcomes change steeply
            near the threshold, so single years by default).
        pairwise: also test every pair of groups (absolute error).
        n_perm: permutations per test family.
        estimation: ``min_n``, the rows each side needs in strata both sides have (10 by
            default: a test compares within strata, so its smallest group is smaller than a
            table's); ``n_boot`` and ``confidence`` of the intervals; ``seed``, from which every
            draw is seeded with the test's labels; ``bands``, for the display columns only (tests
            use ``stratum_years``).
        alpha: the level of ``worse`` and ``direction`` (after Holm).
        outer: a column (e.g. ``model_name``): the tests are made within each of its values (one
            population per model; Holm families stay within a value), which leads each row.

    Returns:
        The ``COLUMNS`` table: ``difference`` is the stratified difference (years, or a rate
        difference for gate rows) with its stratified-bootstrap interval; ``statistic`` equals
        it for group rows and is ``Σ ω d²`` for omnibus rows; ``p_corr`` is Holm over
        ``holm_family`` (``holm_family_size`` tests); ``direction`` is ``higher``/``lower``
        (significant, read from ``difference``) or ``no_difference_found``.
    """
    options = dict(
        features=features,
        outcomes=outcomes,
        challenge_ages=challenge_ages,
        stratum_years=stratum_years,
        gate_stratum_years=gate_stratum_years,
        pairwise=pairwise,
        n_perm=n_perm,
        estimation=estimation,
        alpha=alpha,
    )
    if outer is not None:
        if outer not in df.columns:
            raise KeyError(f"outer grouping column {outer!r} is not in the table")
        parts = [
            significance_tests(part, **options).assign(**{outer: value}) for value, part in df.groupby(outer, sort=True)
        ]
        result = pd.concat(parts, ignore_index=True) if parts else significance_tests(df.iloc[:0], **options)
        return result[[outer, *[c for c in result.columns if c != outer]]] if outer in result else result
    table = with_display_columns(df, estimation.bands)
    unknown = sorted(set(outcomes) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"unknown outcome(s) {unknown}; use {list(OUTCOMES)}")
    signed = table["predicted_age"].to_numpy(float) - table["age"].to_numpy(float)
    values_of = {"absolute_error": np.abs(signed), "signed_error": signed}
    rows: list[dict] = []
    common = dict(
        min_n=estimation.min_n,
        n_perm=n_perm,
        n_boot=estimation.n_boot,
        seed=estimation.seed,
        confidence=estimation.confidence,
    )
    omnibus_rows: dict[str, list[int]] = {outcome: [] for outcome in outcomes}
    for feature in features:
        labels = table[feature].astype(object).where(table[feature].notna(), None).astype(str).to_numpy()
        present = [
            str(g)
            for g in (
                table[feature].cat.categories
                if hasattr(table[feature], "cat")
                else sorted(table[feature].dropna().unique())
            )
            if (labels == str(g)).any()
        ]
        strata = strata_for(table, feature, stratum_years)
        for outcome in outcomes:
            base = {"feature": feature, "outcome": outcome}
            start = len(rows)
            if len(present) < 2:
                rows.append(
                    dict(
                        base,
                        family="group_vs_rest",
                        test=TEST_NAME,
                        status=f"too_few_groups ({len(present)} group(s) of {feature} present)",
                    )
                )
                _apply_holm(rows, [start], f"{feature} groups vs rest, {outcome}", alpha, outcome == "absolute_error")
                omnibus_rows[outcome].append(len(rows))
                rows.append(dict(base, family="omnibus", test=TEST_NAME, status="too_few_groups"))
                continue
            new, statistic, p, used = _contrast_rows(
                values_of[outcome],
                strata,
                labels,
                present,
                [(g, None) for g in present],
                base=base,
                family="group_vs_rest",
                **common,
            )
            rows += new
            _apply_holm(
                rows,
                range(start, len(rows)),
                f"{feature} groups vs rest, {outcome}",
                alpha,
                outcome == "absolute_error",
            )
            omnibus = dict(
                base,
                family="omnibus",
                test=TEST_NAME,
                group="all",
                n=len(table),
                n_used=used,
                statistic=statistic,
                p_unc=p,
            )
            tested = sum(1 for r in new if r.get("status") == "ok")
            omnibus["status"] = "ok" if tested >= 2 and np.isfinite(p) else f"too_few_groups ({tested} testable)"
            if omnibus["status"] != "ok":
                omnibus.pop("p_unc")
            omnibus_rows[outcome].append(len(rows))
            rows.append(omnibus)
        if pairwise and len(present) >= 2:
            start = len(rows)
            pairs = list(itertools.combinations(present, 2))
            for a, b in pairs:
                new, *_ = _contrast_rows(
                    values_of["absolute_error"],
                    strata,
                    labels,
                    present,
                    [(a, b)],
                    base={"feature": feature, "outcome": "absolute_error"},
                    family="pairwise",
                    **common,
                )
                rows += new
            _apply_holm(rows, range(start, len(rows)), f"pairs of {feature} groups, absolute_error", alpha, False)
        start = len(rows)
        gate_strata = strata_for(table, feature, gate_stratum_years)
        for measure in GATE_TEST_MEASURES:
            for challenge_age in challenge_ages:
                counted, event = gate_outcomes(table, challenge_age, measure)
                values = np.where(counted.to_numpy(), event.to_numpy(float), np.nan)
                base = {
                    "feature": feature,
                    "outcome": "gate_event",
                    "measure": measure,
                    "challenge_age": float(challenge_age),
                }
                if len(present) < 2:
                    rows.append(dict(base, family="gate_vs_rest", test=TEST_NAME, status="too_few_groups"))
                    continue
                new, *_ = _contrast_rows(
                    values,
                    gate_strata,
                    labels,
                    present,
                    [(g, None) for g in present],
                    base=base,
                    family="gate_vs_rest",
                    **common,
                )
                rows += new
        _apply_holm(
            rows, range(start, len(rows)), f"{feature} groups vs rest × challenge ages × gate measures", alpha, False
        )
    for outcome, indices in omnibus_rows.items():
        _apply_holm(rows, indices, f"features, omnibus, {outcome}", alpha, False)
    result = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    result["worse"] = result["worse"].astype("boolean").fillna(False).astype(bool)
    for column in ("outcome", "measure", "group", "group_b", "correction", "holm_family", "direction"):
        result[column] = result[column].astype(object).fillna("").astype(str)
    result["status"] = result["status"].astype(object).fillna("not_tested").astype(str)
    logger.info(
        "significance_tests: %d rows, %d tested, %d groups flagged worse (stratified permutation, "
        "%d permutations per family)",
        len(result),
        (result["status"] == "ok").sum(),
        result["worse"].sum(),
        n_perm,
    )
    return result


def flagged_groups(tests: pd.DataFrame, feature: str = "race", alpha: float = 0.05) -> list[str]:
    """Groups of ``feature`` whose absolute error is significantly larger than the rest's (Holm p < alpha)."""
    rows = tests[
        (tests["family"] == "group_vs_rest")
        & (tests["feature"] == feature)
        & (tests["outcome"] == "absolute_error")
        & (tests["status"] == "ok")
    ]
    return sorted(rows.loc[(rows["p_corr"] < alpha) & (rows["difference"] > 0), "group"])

"""Simulated audits for checking that the between-group tests hold their size, and measuring power.

``simulate_predictions`` draws a predictions table in which groups differ in age mix and in
gender mix, and the error of an estimate depends on true age only: the estimate regresses to the
mean (young faces aged up, old faces aged down, as DEX-style models do) and its spread grows
with age, with heavy tails. Nothing about the error depends on race or gender, so any test that
flags a group on such data is a false positive. With ``planted_scale > 0`` one group's errors
are made that much larger (spread multiplied by ``1 + planted_scale``), a real group effect for
measuring power.

``rejection_rates`` runs ``dex_bias.stats.significance.significance_tests`` on many such tables
and returns, per family, how often a test rejects at level α (uncorrected, per test) and how often
a family flags anything after Holm: under the null both should stay near α.

Reference: Morris, White & Crowther (2019), "Using simulation studies to evaluate statistical
methods", Statistics in Medicine 38(11) (Monte-Carlo standard error of a rejection rate:
sqrt(p (1 − p) / n_sim)).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Per race code: (how ages are drawn, share of women). The age mixes differ on purpose.
GROUP_MIX: dict[int, tuple[str, float]] = {
    0: ("young", 0.45),  # mostly children and young adults
    1: ("old", 0.30),  # mostly older adults
    2: ("middle", 0.75),  # mostly 20-50, mostly women
    3: ("uniform", 0.50),
    4: ("ends", 0.55),  # children and the elderly
}


def _ages(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "young":
        ages = rng.gamma(2.0, 8.0, n)
    elif kind == "old":
        ages = 95.0 - rng.gamma(2.5, 9.0, n)
    elif kind == "middle":
        ages = rng.normal(35.0, 8.0, n)
    elif kind == "ends":
        ages = np.where(rng.random(n) < 0.5, rng.uniform(0, 16, n), rng.uniform(60, 95, n))
    else:
        ages = rng.uniform(0, 95, n)
    return np.clip(np.round(ages), 0, 100).astype(int)


def simulate_predictions(
    rng: np.random.Generator, n: int = 600, *, planted_race: int = 3, planted_scale: float = 0.0
) -> pd.DataFrame:
    """One simulated predictions table (``image_id``, ``age``, ``gender``, ``race``, ``predicted_age``).

    Races are equally likely; each race draws ages and genders from its own mix
    (``GROUP_MIX``). The estimate is ``age − 0.25 (age − 35) + (2 + 0.15 age) · t₄`` (clipped at 0),
    times ``1 + planted_scale`` on the noise of ``planted_race``.
    """
    race = rng.integers(0, len(GROUP_MIX), n)
    age = np.empty(n, dtype=int)
    gender = np.empty(n, dtype=int)
    for code, (kind, female_share) in GROUP_MIX.items():
        members = np.flatnonzero(race == code)
        age[members] = _ages(rng, kind, len(members))
        gender[members] = (rng.random(len(members)) < female_share).astype(int)
    noise = (2.0 + 0.15 * age) * rng.standard_t(4, n)
    noise *= np.where(race == planted_race, 1.0 + planted_scale, 1.0)
    predicted = np.clip(age - 0.25 * (age - 35.0) + noise, 0.0, None)
    ids = [f"{a}_{g}_{r}_2017{i:010d}.jpg.chip.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))]
    return pd.DataFrame({"image_id": ids, "age": age, "gender": gender, "race": race, "predicted_age": predicted})


def monte_carlo_bound(alpha: float, simulations: int, standard_errors: float = 2.0) -> float:
    """``α + k · sqrt(α (1 − α) / simulations)``: the most a valid level-α test should reject."""
    return alpha + standard_errors * float(np.sqrt(alpha * (1.0 - alpha) / simulations))


def rejection_rates(tables: Iterable[pd.DataFrame], *, alpha: float = 0.05, **test_options) -> pd.DataFrame:
    """How often each family's tests reject, over simulated tables.

    Returns one row per family × feature × outcome: ``tests`` (tested rows over all tables),
    ``rejection_rate`` (share of tests with uncorrected p < α), ``family_flag_rate`` (share of
    tables in which the family flags anything after Holm), ``simulations``.
    """
    from dex_bias.stats.significance import significance_tests

    rows = []
    count = 0
    for table in tables:
        count += 1
        tests = significance_tests(table, alpha=alpha, **test_options)
        tested = tests[tests["status"] == "ok"]
        for (family, feature, outcome), part in tested.groupby(["family", "feature", "outcome"], sort=False):
            rows.append(
                {
                    "family": family,
                    "feature": feature,
                    "outcome": outcome,
                    "tests": len(part),
                    "rejections": int((part["p_unc"] < alpha).sum()),
                    "flagged": bool((part["p_corr"] < alpha).any()),
                }
            )
    frame = pd.DataFrame(rows)
    summary = (
        frame.groupby(["family", "feature", "outcome"], sort=False)
        .agg(
            tests=("tests", "sum"),
            rejections=("rejections", "sum"),
            flagged=("flagged", "sum"),
            simulations=("flagged", "size"),
        )
        .reset_index()
    )
    summary["rejection_rate"] = summary["rejections"] / summary["tests"]
    summary["family_flag_rate"] = summary["flagged"] / count
    return summary

"""The calibration harness: every test that can flag a group holds its size when groups differ in
age mix and error depends on age only, the same harness catches a test that does not, and the
tests have power against a planted group effect.

Run with ``-s`` to see the measured rates (they go in issue notes and the README).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.calibration import monte_carlo_bound, rejection_rates, simulate_predictions
from dex_bias.stats.engine import Estimation
from dex_bias.stats.significance import significance_tests

SIMULATIONS = 200
ALPHA = 0.05
#: Permutations per family in the harness: any B keeps a permutation test valid ((1 + k) / (1 + B)).
FAST = dict(n_perm=199, estimation=Estimation(min_n=10, n_boot=1))


@pytest.fixture(scope="module")
def null_tables() -> list[pd.DataFrame]:
    rng = np.random.default_rng(20240601)
    return [simulate_predictions(rng, 400) for _ in range(SIMULATIONS)]


def test_the_simulated_null_is_confounded_by_age_mix(null_tables):
    # The harness is only a check if the naive comparison is fooled: groups' raw MAEs must differ a lot.
    table = pd.concat(null_tables)
    mae = (table.predicted_age - table.age).abs().groupby(table.race).mean()
    assert mae.max() - mae.min() > 3.0, mae
    assert table.groupby("race").age.mean().agg(np.ptp) > 30


def test_every_family_holds_its_size_under_the_confounded_null(null_tables):
    rates = rejection_rates(null_tables, alpha=ALPHA, **FAST)
    bound = monte_carlo_bound(ALPHA, SIMULATIONS)
    print(f"\nnull: {SIMULATIONS} simulated audits of 400 faces; bound α + 2 MCSE = {bound:.4f}")
    print(rates[["family", "feature", "outcome", "tests", "rejection_rate", "family_flag_rate"]].to_string(index=False))
    expected = {
        ("group_vs_rest", "race"),
        ("group_vs_rest", "gender"),
        ("omnibus", "race"),
        ("omnibus", "gender"),
        ("pairwise", "race"),
        ("pairwise", "gender"),
        ("gate_vs_rest", "race"),
        ("gate_vs_rest", "gender"),
    }
    assert expected <= set(zip(rates.family, rates.feature))
    assert (rates["tests"] >= SIMULATIONS).all()
    too_often = rates[(rates["rejection_rate"] > bound) | (rates["family_flag_rate"] > bound)]
    assert too_often.empty, too_often


def test_the_harness_catches_a_test_that_ignores_age_mix(null_tables):
    # One stratum of 200 years is the unstratified comparison: same statistic, same permutation
    # machinery, no like-with-like. It must fail the harness, or the harness proves nothing.
    rates = rejection_rates(
        null_tables[:60],
        alpha=ALPHA,
        stratum_years=200,
        pairwise=False,
        features=("race",),
        challenge_ages=(18,),
        **FAST,
    )
    naive = rates[(rates.family == "group_vs_rest") & (rates.outcome == "absolute_error")].iloc[0]
    print(f"\nunstratified group-vs-rest on the same null: rejects {naive.rejection_rate:.3f}")
    assert naive.rejection_rate > 3 * monte_carlo_bound(ALPHA, 60)


def test_power_against_a_planted_group_effect():
    rng = np.random.default_rng(7)
    lines = []
    power = {}
    for scale in (0.5, 1.0):
        flagged, differences, _true_gap = [], [], []
        for _ in range(60):
            table = simulate_predictions(rng, 400, planted_race=3, planted_scale=scale)
            tests = significance_tests(table, features=("race",), pairwise=False, challenge_ages=(18,), **FAST)
            row = tests[
                (tests.family == "group_vs_rest") & (tests.outcome == "absolute_error") & (tests.group == "Indian")
            ].iloc[0]
            flagged.append(bool(row.worse))
            differences.append(row.difference)
        power[scale] = float(np.mean(flagged))
        lines.append(
            f"planted noise × {1 + scale:g}: stratified MAE difference {np.mean(differences):.2f} years, "
            f"flagged worse (Holm p < {ALPHA}) in {power[scale]:.2f} of 60"
        )
    print("\n" + "\n".join(lines))
    assert power[1.0] >= 0.8
    assert power[0.5] < power[1.0]

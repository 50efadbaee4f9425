"""Between-group tests: the statistic, its permutation p and its interval checked against scipy,
statsmodels and pingouin on the same data; direction read from the tested statistic; flags found
where planted (with race confounded by age) and small groups given a status.
"""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from dex_bias.stats.calibration import simulate_predictions
from dex_bias.stats.engine import Estimation
from dex_bias.stats.permutation import (
    bootstrap_difference_interval,
    permutation_test,
    standardised_contrast,
    standardised_difference,
)
from dex_bias.stats.significance import flagged_groups, holm, significance_tests, strata_for
from tests.stats.conftest import assert_interval_near, scipy_interval, synthetic_predictions


def _difference(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def test_holm_matches_statsmodels_and_leaves_missing_p_out():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan, 0.2])
    finite = ~np.isnan(p)
    expected = multipletests(p[finite], method="holm")[1]
    adjusted = holm(p)
    assert adjusted[finite] == pytest.approx(expected)
    assert np.isnan(adjusted[4])
    assert np.isnan(holm([np.nan])).all() and holm([]).size == 0


def test_one_stratum_permutation_p_matches_scipys_permutation_test():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 30), rng.normal(0.45, 1.3, 45)
    values = np.r_[x, y]
    in_x = np.r_[np.ones(30, bool), np.zeros(45, bool)]
    contrast = standardised_contrast(in_x, ~in_x, np.zeros(75))
    result = permutation_test(
        values, np.zeros(75), contrast.coefficient[:, None], n_perm=20000, rng=np.random.default_rng(2)
    )
    reference = st.permutation_test(
        (x, y), _difference, n_resamples=20000, vectorized=True, rng=np.random.default_rng(3)
    )
    assert result.effects[0] == pytest.approx(reference.statistic)
    assert result.p_values[0] == pytest.approx(reference.pvalue, abs=0.01)


def test_pairs_as_strata_give_scipys_exact_paired_permutation_test():
    # Strata of two rows, one per side: permuting within strata swaps within pairs, which is
    # scipy's 'samples' permutation type; with 12 pairs scipy enumerates all 4096 exactly.
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, 12)
    b = a + rng.normal(0.7, 1, 12)
    values = np.r_[a, b]
    strata = np.r_[np.arange(12), np.arange(12)]
    in_a = np.r_[np.ones(12, bool), np.zeros(12, bool)]
    contrast = standardised_contrast(in_a, ~in_a, strata)
    result = permutation_test(values, strata, contrast.coefficient[:, None], n_perm=40000, rng=np.random.default_rng(5))
    reference = st.permutation_test(
        (a, b), _difference, permutation_type="samples", n_resamples=np.inf, vectorized=True
    )
    assert result.effects[0] == pytest.approx(reference.statistic)
    assert result.p_values[0] == pytest.approx(reference.pvalue, abs=0.006)


def test_gate_rate_difference_p_matches_the_exact_hypergeometric_distribution():
    # One stratum, 0/1 events: the permutation null of the group's event count is hypergeometric.
    events = np.r_[np.ones(9), np.zeros(11), np.ones(4), np.zeros(26)]  # group 9/20, rest 4/30
    in_group = np.r_[np.ones(20, bool), np.zeros(30, bool)]
    contrast = standardised_contrast(in_group, ~in_group, np.zeros(50))
    result = permutation_test(
        events, np.zeros(50), contrast.coefficient[:, None], n_perm=40000, rng=np.random.default_rng(6)
    )
    law = st.hypergeom(50, 13, 20)  # population, events, group size
    counts = np.arange(0, 14)
    difference = counts / 20 - (13 - counts) / 30
    observed = 9 / 20 - 4 / 30
    exact = law.pmf(counts)[np.abs(difference) >= abs(observed) - 1e-12].sum()
    assert result.effects[0] == pytest.approx(observed)
    assert result.p_values[0] == pytest.approx(exact, abs=0.004)


def test_group_vs_rest_difference_is_the_stratum_standardised_mean_difference():
    df = simulate_predictions(np.random.default_rng(8), 800, planted_race=1, planted_scale=1.0)
    tests = significance_tests(
        df, features=("race",), pairwise=False, n_perm=500, stratum_years=5, estimation=Estimation(min_n=10, n_boot=300)
    )
    row = tests[
        (tests.family == "group_vs_rest") & (tests.outcome == "absolute_error") & (tests.group == "Black")
    ].iloc[0]
    frame = df.assign(
        error=(df.predicted_age - df.age).abs(), stratum=(df.age // 5) * 2 + df.gender, black=df.race == 1
    )
    means = frame.groupby(["stratum", "black"]).error.mean().unstack()
    sizes = frame[frame.black].groupby("stratum").size()
    usable = means.dropna().index
    weights = sizes[usable] / sizes[usable].sum()
    direct = float((weights * (means.loc[usable, True] - means.loc[usable, False])).sum())
    assert row.difference == pytest.approx(direct)
    assert row.n_used == sizes[usable].sum() and row.strata_used == len(usable)
    assert row.difference_ci_low < row.difference < row.difference_ci_high
    assert row.worse and row.direction == "higher" and row.p_corr < 0.01
    assert flagged_groups(tests, "race") == ["Black"]


def test_direction_comes_from_the_tested_statistic_not_from_ranks():
    # The group's typical errors are smaller, but a few gross failures make its mean error larger:
    # ranks (CLES < 0.5) say "better", the mean says "worse". The report states the mean
    # difference, so it must test the mean difference and read its direction from it.
    rng = np.random.default_rng(9)
    n = 600
    age = rng.integers(18, 60, n)
    group = rng.random(n) < 0.3
    error = np.where(group, rng.exponential(2.0, n), rng.exponential(4.0, n))
    error[np.flatnonzero(group)[:12]] += 90.0
    df = pd.DataFrame(
        {"age": age, "gender": rng.integers(0, 2, n), "race": np.where(group, 1, 0), "predicted_age": age + error}
    )
    cles = pg.mwu(error[group], error[~group])["CLES"].iloc[0]
    assert cles < 0.4  # the rank view
    tests = significance_tests(
        df, features=("race",), pairwise=False, n_perm=999, estimation=Estimation(min_n=10, n_boot=500)
    )
    row = tests[
        (tests.family == "group_vs_rest") & (tests.outcome == "absolute_error") & (tests.group == "Black")
    ].iloc[0]
    assert row.difference > 0 and row.difference == pytest.approx(
        standardised_difference(
            error, group, ~group, strata_for(df.assign(race=df.race.map({0: "White", 1: "Black"})), "race", 5)
        )
    )
    assert row.direction == ("higher" if row.p_corr < 0.05 else "no_difference_found")
    assert row.worse == (row.p_corr < 0.05)
    assert np.sign(row.difference_ci_low + row.difference_ci_high) == np.sign(row.difference)


def test_interval_agrees_with_scipys_two_sample_bootstrap_in_one_stratum():
    rng = np.random.default_rng(10)
    x, y = rng.gamma(2, 3, 80), rng.gamma(2, 4, 120)
    values, in_x = np.r_[x, y], np.r_[np.ones(80, bool), np.zeros(120, bool)]
    low, high = bootstrap_difference_interval(
        values, in_x, ~in_x, np.zeros(200), n_boot=4000, rng=np.random.default_rng(11)
    )
    assert_interval_near(low, high, scipy_interval((x, y), _difference, n_resamples=4000, seed=12), 0.2)


def test_holm_families_are_named_and_sized_and_p_corr_is_holm_over_them():
    df = synthetic_predictions(1500, seed=11, race_bias={1: 5.0})
    tests = significance_tests(df, n_perm=400, estimation=Estimation(min_n=10, n_boot=50, seed=5))
    for _family, part in tests[tests.status == "ok"].groupby("holm_family"):
        assert part.p_corr.to_numpy() == pytest.approx(multipletests(part.p_unc.to_numpy(), method="holm")[1])
        assert (part.holm_family_size == len(part)).all()
    rest = tests[(tests.family == "group_vs_rest") & (tests.feature == "race") & (tests.outcome == "absolute_error")]
    assert set(rest.holm_family) == {"race groups vs rest, absolute_error"} and (rest.holm_family_size == 5).all()
    assert flagged_groups(tests, "race") == ["Black"]
    omnibus = tests[(tests.family == "omnibus") & (tests.feature == "race") & (tests.outcome == "absolute_error")].iloc[
        0
    ]
    weights = rest.n_used / rest.n_used.sum()
    assert omnibus.statistic == pytest.approx(float((weights * rest.difference**2).sum()))


def test_no_bias_flags_nothing():
    # One table; how often a table without bias gets a flag is measured by the calibration harness
    # (tests/stats/test_calibration.py), where race is confounded with age.
    tests = significance_tests(
        synthetic_predictions(1500, seed=12), n_perm=999, estimation=Estimation(min_n=10, n_boot=50)
    )
    assert flagged_groups(tests, "race") == [] and flagged_groups(tests, "gender") == []


def test_small_groups_get_a_status_not_nan_or_crash():
    df = synthetic_predictions(300, seed=3)
    df = df[(df.race != 4) | (df.index < 40)]  # a handful of "Others"
    tests = significance_tests(df, n_perm=99, estimation=Estimation(min_n=15, n_boot=20))
    assert tests.status.notna().all() and (tests.status != "").all()
    small = tests[tests.status.str.startswith("too_small")]
    assert (small.group == "Others").any()
    ok = tests[tests.status == "ok"]
    assert ok.p_unc.notna().all() and ok.p_corr.notna().all()
    # Nothing testable at all.
    tiny = significance_tests(df.head(12), n_perm=99, estimation=Estimation(min_n=10, n_boot=20))
    assert len(tiny) and not (tiny.status == "ok").any()
    assert tiny.p_corr.isna().all()


def test_outer_grouping_tests_each_model_on_its_own():
    one = simulate_predictions(np.random.default_rng(20), 500, planted_race=1, planted_scale=1.5)
    two = simulate_predictions(np.random.default_rng(21), 500)
    both = pd.concat([one.assign(model_name="a"), two.assign(model_name="b")], ignore_index=True)
    tests = significance_tests(
        both,
        features=("race",),
        pairwise=False,
        n_perm=300,
        outer="model_name",
        estimation=Estimation(min_n=10, n_boot=50),
    )
    alone = significance_tests(
        two, features=("race",), pairwise=False, n_perm=300, estimation=Estimation(min_n=10, n_boot=50)
    )
    mine = tests[tests.model_name == "b"].drop(columns="model_name").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone)
    assert flagged_groups(tests[tests.model_name == "a"], "race") == ["Black"]

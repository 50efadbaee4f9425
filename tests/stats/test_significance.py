import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dex_bias.stats.significance import flagged_groups, holm, significance_tests
from tests.stats.conftest import synthetic_predictions

RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


@pytest.fixture(scope="module")
def biased():
    df = synthetic_predictions(1500, seed=11, race_bias={1: 5.0})
    return df, significance_tests(df, n_boot=200, seed=5)


def _band(df, low, high):
    part = df[df.age.between(low, high)]
    return part, (part.predicted_age - part.age).abs()


def test_holm_matches_direct_step_down():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    m = 4
    order = [3, 0, 2, 1]
    expected = np.maximum.accumulate([(m - i) * p[k] for i, k in enumerate(order)])
    adjusted = holm(p)
    assert adjusted[order] == pytest.approx(np.minimum(expected, 1))
    assert np.isnan(adjusted[4])


def test_omnibus_tests_match_scipy(biased):
    df, tests = biased
    part, error = _band(df, 25, 39)
    samples = [error[part.race == code].to_numpy() for code in RACES]
    kruskal = tests[(tests.test == "kruskal") & (tests.feature == "race") & (tests.age_band == "25-39")].iloc[0]
    reference = st.kruskal(*samples)
    assert kruskal.statistic == pytest.approx(reference.statistic) and kruskal.p_unc == pytest.approx(reference.pvalue)
    welch = tests[(tests.test == "welch_anova") & (tests.feature == "race") & (tests.age_band == "25-39")].iloc[0]
    reference = st.f_oneway(*samples, equal_var=False)
    assert welch.statistic == pytest.approx(reference.statistic) and welch.p_unc == pytest.approx(reference.pvalue)
    # Holm over the six bands
    family = tests[(tests.test == "kruskal") & (tests.feature == "race") & (tests.status == "ok")]
    assert family.p_corr.to_numpy() == pytest.approx(holm(family.p_unc.to_numpy()))


def test_pairwise_mann_whitney_and_games_howell_match_scipy(biased):
    df, tests = biased
    part, error = _band(df, 40, 59)
    black, white = error[part.race == 1].to_numpy(), error[part.race == 0].to_numpy()
    pairs = tests[(tests.family == "pairwise") & (tests.feature == "race") & (tests.age_band == "40-59")]
    row = pairs[(pairs.test == "mann_whitney") & ({"Black", "White"} == pairs[["group", "group_b"]].apply(set, axis=1))].iloc[0]
    reference = st.mannwhitneyu(black, white, alternative="two-sided")
    assert row.p_unc == pytest.approx(reference.pvalue)
    mann_whitney = pairs[pairs.test == "mann_whitney"]
    assert mann_whitney.p_corr.to_numpy() == pytest.approx(holm(mann_whitney.p_unc.to_numpy()))
    row = pairs[(pairs.test == "games_howell") & (pairs.group == "Black") & (pairs.group_b == "White")].iloc[0]
    # Games-Howell by its formula: Welch t, Welch-Satterthwaite df, studentized range with k groups
    va, vb = black.var(ddof=1) / len(black), white.var(ddof=1) / len(white)
    t = (black.mean() - white.mean()) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(black) - 1) + vb**2 / (len(white) - 1))
    assert row.statistic == pytest.approx(t) and row.dof == pytest.approx(dof)
    assert row.p_unc == pytest.approx(st.studentized_range.sf(abs(t) * np.sqrt(2), 5, dof), abs=1e-3)


def test_group_vs_rest_flags_the_biased_group_only(biased):
    df, tests = biased
    assert flagged_groups(tests, "race") == ["Black"]
    rows = tests[(tests.family == "group_vs_rest") & (tests.feature == "race")]
    assert rows.p_corr.to_numpy() == pytest.approx(holm(rows.p_unc.to_numpy()))
    black = rows[rows.group == "Black"].iloc[0]
    assert black.difference_ci_low > 0 and black.worse
    error = (df.predicted_age - df.age).abs()
    band = pd.cut(df.age, [-1, 12, 17, 24, 39, 59, 116])
    adjusted = error - error.groupby(band, observed=True).transform("mean")
    reference = st.mannwhitneyu(adjusted[df.race == 1], adjusted[df.race != 1], alternative="two-sided")
    assert black.p_unc == pytest.approx(reference.pvalue)
    assert black.difference == pytest.approx(adjusted[df.race == 1].mean() - adjusted[df.race != 1].mean())


def test_no_bias_flags_nothing():
    tests = significance_tests(synthetic_predictions(1500, seed=12), n_boot=50)
    assert flagged_groups(tests, "race") == [] and flagged_groups(tests, "gender") == []


def test_gate_chi_square_matches_scipy(biased):
    df, tests = biased
    minors = df[df.age < 18]
    table = pd.crosstab(minors.race, minors.predicted_age >= 21)
    reference = st.chi2_contingency(table.to_numpy(), correction=False)
    row = tests[(tests.family == "gate_chi_square") & (tests.feature == "race") & (tests.challenge_age == 21)
                & (tests.measure == "minors_accepted")].iloc[0]
    assert row.statistic == pytest.approx(reference.statistic) and row.p_unc == pytest.approx(reference.pvalue)
    assert row.dof == reference.dof


def test_small_groups_get_a_status_not_nan_or_crash():
    df = synthetic_predictions(300, seed=3)
    df = df[(df.race != 4) | (df.index < 40)]  # a handful of "Others"
    tests = significance_tests(df, min_n=15, n_boot=20)
    assert tests.status.notna().all()
    small = tests[tests.status.str.startswith("too_small")]
    assert (small.group == "Others").any()
    ok = tests[tests.status.str.startswith("ok")]
    assert ok.p_unc.notna().all() and ok.p_corr.notna().all()
    tiny = significance_tests(df.head(12), min_n=10, n_boot=20)  # nothing testable at all
    assert len(tiny) and not tiny.status.str.startswith("ok").any()

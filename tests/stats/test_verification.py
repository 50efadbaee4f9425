"""NIST's age-verification measures: counts from a direct reading of the definitions, Wilson
intervals from scipy, the threshold from numpy's quantile, the spread across groups."""

import numpy as np
import pytest
from scipy import stats as st

from dex_bias.stats.engine import Estimation
from dex_bias.stats.verification import age_verification_metrics, group_spread
from tests.stats.conftest import synthetic_predictions, verification_settings


@pytest.fixture(scope="module")
def df():
    return synthetic_predictions(4000, seed=31, race_bias={2: 4.0}, noise=5.0)


def _row(table, metric, parameters, grouping="overall", group="all"):
    return table[
        (table.metric == metric)
        & (table.parameters == parameters)
        & (table.grouping == grouping)
        & (table.group == group)
    ].iloc[0]


def test_challenge_false_positives_any_challenge_and_true_ages(df):
    settings = verification_settings({"challenge.challenge_ages": [25, 21], "challenge.true_ages": [17, [15, 17]]})
    table = age_verification_metrics(df, settings)
    for tau in (25, 21):
        for low, high, text in ((17, 17, "17"), (15, 17, "15-17")):
            row = _row(
                table, "challenge_false_positive", f"true age {text} estimated at or above {tau}", "race", "Asian"
            )
            people = df[(df.race == 2) & df.age.between(low, high)]
            events = int((people.predicted_age >= tau).sum())
            assert (row.events, row.n) == (events, len(people))
            reference = st.binomtest(events, len(people)).proportion_ci(method="wilson")
            assert (row.ci_low, row.ci_high) == pytest.approx((reference.low, reference.high))


def test_thirteen_to_sixteen_shares_read_estimates_as_whole_years(df):
    table = age_verification_metrics(df, verification_settings())
    teens = df[df.age.between(13, 16)]
    read = np.floor(teens.predicted_age)
    shares = {
        "0-12": (read <= 12).mean(),
        "13-16": read.between(13, 16).mean(),
        "17-22": read.between(17, 22).mean(),
        "23+": (read >= 23).mean(),
    }
    for band, share in shares.items():
        assert _row(table, "age_range_estimate", f"true age 13-16 estimated {band}").rate == pytest.approx(share)
    assert sum(shares.values()) == pytest.approx(1.0)
    for low, high in ((8, 12), (17, 22)):
        people = df[df.age.between(low, high)]
        row = _row(table, "age_range_estimate", f"true age {low}-{high} estimated 13-16")
        assert row.rate == pytest.approx(np.floor(people.predicted_age).between(13, 16).mean())


def test_verification_threshold_is_set_on_the_reference_group_and_read_for_every_group(df):
    settings = verification_settings({"verification.pass_share": 0.1, "verification.reference": {"race": "White"}})
    table = age_verification_metrics(df, settings)
    reference = df[(df.race == 0) & df.age.between(14, 17)].predicted_age
    passing = int(np.floor(0.1 * len(reference)))
    threshold = np.sort(reference.to_numpy())[len(reference) - passing - 1]  # exactly `passing` lie above it
    label = "verification at 18, threshold set on reference minors"
    white = _row(table, "verification_minors_pass", f"{label}: true age 14-17 passing", "race", "White")
    assert white.threshold == pytest.approx(threshold)
    assert white.rate == pytest.approx((reference > threshold).mean()) and white.rate <= 0.1
    asian_minors = df[(df.race == 2) & df.age.between(14, 17)]
    asian = _row(table, "verification_minors_pass", f"{label}: true age 14-17 passing", "race", "Asian")
    assert asian.rate == pytest.approx((asian_minors.predicted_age > threshold).mean())
    assert asian.rate > white.rate  # the group estimated 4 years older passes more often at the same threshold
    adults = df[(df.race == 2) & df.age.between(18, 30)]
    fail = _row(table, "verification_adults_fail", f"{label}: true age 18-30 failing", "race", "Asian")
    assert fail.rate == pytest.approx((adults.predicted_age <= threshold).mean())
    nobody = age_verification_metrics(df, verification_settings({"verification.reference": {"race": "Martian"}}))
    rows = nobody[nobody.metric.str.startswith("verification")]
    assert (rows.status == "undefined").all() and rows.rate.isna().all()
    assert rows.notes.str.contains("no reference minors").all()


def test_spread_across_groups_max_minus_min_and_gini(df):
    spread = group_spread(
        df, verification_settings(), features=("race", "gender", "race × gender"), estimation=Estimation(n_boot=200)
    )
    mae = spread[(spread.metric == "mae") & (spread.feature == "race")].iloc[0]
    by_race = (df.predicted_age - df.age).abs().groupby(df.race).mean()
    assert mae.max_minus_min == pytest.approx(by_race.max() - by_race.min())
    assert mae.max_group == "Asian"
    pairs = np.abs(by_race.to_numpy()[:, None] - by_race.to_numpy()[None, :]).sum()
    assert mae.gini == pytest.approx(pairs / (2 * len(by_race) ** 2 * by_race.mean()))
    assert mae.max_minus_min_ci_low < mae.max_minus_min < mae.max_minus_min_ci_high
    assert (spread[spread.feature == "race × gender"].groups.max()) == 10
    balanced = spread[spread.metric == "balanced_mae"]
    assert set(balanced.feature) == {"race"}  # gender groups fix gender: not balanced over it
    assert spread.status.notna().all()

import numpy as np
import pytest
from scipy import stats as st

from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers


def test_rates_and_wilson_bounds_match_direct_counts(predictions):
    table = age_gate_metrics(predictions, challenge_ages=(18, 21, 25), by=("race",))
    for tau in (18, 21, 25):
        white = predictions[predictions.race == 0]
        minors = white[white.age < 18]
        accepted = int((minors.predicted_age >= tau).sum())
        row = table[
            (table.group == "White") & (table.measure == "minors_accepted") & (table.challenge_age == tau)
        ].iloc[0]
        assert (row.events, row.n) == (accepted, len(minors))
        assert row.rate == pytest.approx(accepted / len(minors))
        ci = st.binomtest(accepted, len(minors)).proportion_ci(method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
        young_adults = predictions[predictions.age.between(18, 24)]
        row = table[
            (table.group == "all") & (table.measure == "adults_challenged") & (table.challenge_age == tau)
        ].iloc[0]
        assert row.events == (young_adults.predicted_age < tau).sum() and row.n == len(young_adults)
    teens = predictions[predictions.age.between(13, 17)]
    row = table[(table.group == "all") & (table.measure == "teens_accepted") & (table.challenge_age == 21)].iloc[0]
    assert row.events == (teens.predicted_age >= 21).sum()
    refused = table[table.measure == "adults_refused"]
    assert set(refused.challenge_age) == {18.0}
    adults = predictions[predictions.age >= 18]
    assert refused[refused.group == "all"].iloc[0].events == (adults.predicted_age < 18).sum()


def test_unrounded_estimates_and_empty_groups_have_a_status(predictions):
    few = predictions.head(6).assign(age=[17, 17, 30, 30, 30, 30], predicted_age=[17.6, 18.0, 30, 30, 30, 30], race=0)
    table = age_gate_metrics(few, challenge_ages=(18,), by=("race",))
    row = table[(table.group == "all") & (table.measure == "minors_accepted")].iloc[0]
    assert row.events == 1  # 17.6 would round up to 18; the gate sees 17.6
    empty = table[table.measure == "teens_accepted"]
    assert (empty.n > 0).all() and (empty.status == "small_group").all()
    adults_only = few.assign(age=30)
    table = age_gate_metrics(adults_only, challenge_ages=(18,), by=("race",))
    row = table[table.measure == "minors_accepted"].iloc[0]
    # Nobody to count is "no cases", never a rate of 0 % with an interval of [0, 0].
    assert row.status == "no_cases" and row.n == 0
    assert np.isnan(row.rate) and np.isnan(row.ci_low) and np.isnan(row.ci_high)


def test_buffer_is_smallest_challenge_age_meeting_target(predictions):
    buffers = challenge_age_buffers(predictions, by=("race",), targets=(0.01, 0.05))
    for target in (0.01, 0.05):
        minors = predictions.loc[(predictions.race == 3) & (predictions.age < 18), "predicted_age"].to_numpy()
        expected = next(tau for tau in range(18, 61) if (minors >= tau).mean() <= target)
        row = buffers[(buffers.group == "Indian") & (buffers.target_rate == target)].iloc[0]
        assert row.buffer_challenge_age == expected and row.buffer_years == expected - 18
        assert (minors >= expected - 1).mean() > target or expected == 18

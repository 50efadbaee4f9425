"""The grouping and bootstrap engine: groups, labels, outer grouping, intervals and spread, checked
against pandas, scipy and statsmodels on the same data."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dex_bias.stats.engine import (
    Estimation,
    Metric,
    bootstrap_indices,
    gini,
    iter_groups,
    metric_frame,
    spread,
    spread_frame,
    wilson,
)
from dex_bias.stats.metrics import mean_absolute_error, with_display_columns
from tests.stats.conftest import assert_interval_near, scipy_interval, synthetic_predictions

MAE = {"mae": Metric(mean_absolute_error)}


@pytest.fixture(scope="module")
def table():
    df = synthetic_predictions(900, seed=21)
    df["model_name"] = np.where(np.arange(len(df)) % 3 == 0, "model_a", "model_b")
    return with_display_columns(df)


def test_groups_labels_and_values_match_pandas_groupby(table):
    frame = metric_frame(table, MAE, ["race", "gender"], estimation=Estimation(n_boot=50))
    assert list(frame.grouping.unique()) == ["overall", "race", "gender", "race × gender"]
    error = (table.predicted_age - table.age).abs()
    direct = error.groupby([table.race, table.gender], observed=True).agg(["mean", "size"])
    row = frame[frame.group == "Asian · female"].iloc[0]
    assert (row.race, row.gender, row.n) == ("Asian", "female", direct.loc[("Asian", "female"), "size"])
    assert row.mae == pytest.approx(direct.loc[("Asian", "female"), "mean"])
    assert frame[frame.grouping == "race"].n.sum() == len(table)
    assert frame.loc[frame.grouping == "overall", "race"].iloc[0] == ""


def test_outer_grouping_tables_each_model_as_its_own_population(table):
    both = metric_frame(table, MAE, ["race"], outer="model_name", estimation=Estimation(n_boot=200, seed=4))
    assert set(both.model_name) == {"model_a", "model_b"}
    alone = metric_frame(
        table[table.model_name == "model_a"].reset_index(drop=True),
        MAE,
        ["race"],
        outer="model_name",
        estimation=Estimation(n_boot=200, seed=4),
    )
    mine = both[both.model_name == "model_a"].reset_index(drop=True)
    # Seeds come from the row's own labels, so a row's interval does not depend on the other rows.
    pd.testing.assert_frame_equal(mine, alone)
    with pytest.raises(KeyError, match="outer grouping column 'vendor'"):
        metric_frame(table, MAE, ["race"], outer="vendor")


def test_bootstrap_interval_agrees_with_scipy(table):
    frame = metric_frame(table, MAE, ["race"], intersections=False, estimation=Estimation(n_boot=4000, seed=1))
    white = table[table.race == "White"]
    row = frame[frame.group == "White"].iloc[0]
    reference = scipy_interval(
        (white.age.to_numpy(float), white.predicted_age.to_numpy(float)),
        lambda t, p, axis: np.mean(np.abs(p - t), axis=axis),
        paired=True,
        n_resamples=4000,
        seed=2,
    )
    assert_interval_near(row.mae_ci_low, row.mae_ci_high, reference, 0.12)


def test_wilson_rates_and_no_cases(table):
    minors = (table.age < 18).to_numpy()
    scored = table.assign(event=(table.predicted_age >= 18).astype(float), counted=minors)
    scored.loc[scored.race == "Others", "counted"] = False  # a group nobody is counted in
    rate = {"rate": Metric(lambda v: np.mean(v, axis=-1), ("event",), interval="wilson")}
    frame = metric_frame(scored, rate, ["race"], where="counted", intersections=False)
    asian = scored[(scored.race == "Asian") & scored.counted]
    row = frame[frame.group == "Asian"].iloc[0]
    reference = st.binomtest(int(asian.event.sum()), len(asian)).proportion_ci(method="wilson")
    assert (row.rate_events, row.n) == (int(asian.event.sum()), len(asian))
    assert (row.rate_ci_low, row.rate_ci_high) == pytest.approx((reference.low, reference.high))
    others = frame[frame.group == "Others"].iloc[0]
    assert others.status == "no_cases" and others.n == 0 and np.isnan(others.rate) and np.isnan(others.rate_ci_low)
    assert wilson(3, 10) == pytest.approx(tuple(st.binomtest(3, 10).proportion_ci(method="wilson")))


def test_stratified_bootstrap_keeps_every_stratum_count():
    strata = np.array([0, 0, 1, 1, 1, 2])
    rows = bootstrap_indices(6, 500, np.random.default_rng(0), strata)
    assert (strata[rows] == strata[None, :]).all()
    assert len(np.unique(rows[:, 2:5])) == 3  # drawn from the stratum's own rows


def test_gini_and_spread_match_independent_formulas():
    values = np.array([4.0, 6.5, 5.0, 9.0])
    ordered = np.sort(values)
    k = len(values)
    sorted_formula = 2 * np.sum(np.arange(1, k + 1) * ordered) / (k * ordered.sum()) - (k + 1) / k
    assert gini(values) == pytest.approx(sorted_formula)
    assert gini(np.full(3, 2.0)) == 0.0
    assert np.isnan(gini(np.array([-1.0, 1.0])))
    out = spread(values)
    assert out["max_minus_min"] == 5.0 and out["max_over_min"] == pytest.approx(9 / 4)


def test_spread_interval_resamples_each_group_like_scipys_multi_sample_bootstrap(table):
    frame = spread_frame(table, MAE, ["race"], estimation=Estimation(n_boot=3000, seed=3, min_n=30))
    row = frame.iloc[0]
    errors = [(part.predicted_age - part.age).abs().to_numpy() for _, part in table.groupby("race", observed=True)]
    means = [e.mean() for e in errors]
    assert row.max_minus_min == pytest.approx(max(means) - min(means))
    assert row.gini == pytest.approx(float(gini(np.array(means))))
    reference = scipy_interval(
        errors, lambda *e, axis: np.ptp([x.mean(axis=axis) for x in e], axis=0), n_resamples=3000, seed=4
    )
    assert_interval_near(row.max_minus_min_ci_low, row.max_minus_min_ci_high, reference, 0.15)
    few = spread_frame(table.head(40), MAE, ["race"], estimation=Estimation(min_n=30))
    assert few.iloc[0].status.startswith("too_few_groups") and few.iloc[0].groups_left_out


def test_iter_groups_skips_missing_values_and_empty_tables(table):
    holes = table.assign(race=table.race.where(np.arange(len(table)) % 10 != 0))
    groups = [g for g in iter_groups(holes, ["race"], intersections=False) if g.grouping]
    assert sum(len(g.rows) for g in groups) == holes.race.notna().sum()
    empty = metric_frame(table.iloc[:0], MAE, ["race"])
    assert len(empty) == 1 and empty.iloc[0].status == "no_cases" and empty.iloc[0].n == 0

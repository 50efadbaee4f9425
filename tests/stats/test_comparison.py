"""Several models on the same faces: pairing, paired tests (scipy, pingouin, statsmodels), spread, null size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from dex_bias.stats.comparison import (
    leaderboard,
    model_gate_metrics,
    model_metrics,
    model_spread,
    paired_model_tests,
    rank_biserial,
    same_faces,
)
from dex_bias.stats.engine import Estimation, gini


def predictions_of(rng, n: int = 400, *, noise_a: float = 5.0, noise_b: float = 5.0, race_effect: float = 0.0):
    """Two models' predictions on the same faces; error grows with age; ``race_effect`` years more for
    model a on race 1."""
    age = rng.integers(1, 80, n)
    race = rng.integers(0, 5, n)
    gender = rng.integers(0, 2, n)
    difficulty = 1 + age / 40
    base = pd.DataFrame(
        {
            "image_id": [f"{a}_{g}_{r}_{i:05d}.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))],
            "age": age,
            "gender": gender,
            "race": race,
        }
    )
    a = base.assign(predicted_age=age + rng.normal(0, noise_a, n) * difficulty + race_effect * (race == 1))
    b = base.assign(predicted_age=age + rng.normal(0, noise_b, n) * difficulty)
    return {"model_a": a, "model_b": b}


def test_same_faces_keeps_the_faces_every_model_predicted_and_refuses_mismatched_labels():
    predictions = predictions_of(np.random.default_rng(0), 50)
    predictions["model_b"] = predictions["model_b"].iloc[10:]  # model_b never saw the first 10 faces
    long, coverage = same_faces(predictions)
    assert set(long.groupby("model").size()) == {40}
    assert coverage.set_index("model")["left_out"].to_dict() == {"model_a": 10, "model_b": 0}
    assert (
        long[long["model"] == "model_a"]["image_id"].to_numpy()
        == long[long["model"] == "model_b"]["image_id"].to_numpy()
    ).all()
    relabelled = {**predictions, "model_b": predictions["model_b"].assign(age=predictions["model_b"]["age"] + 1)}
    with pytest.raises(ValueError, match="labels some faces differently"):
        same_faces(relabelled)
    with pytest.raises(ValueError, match="at least two models"):
        same_faces({"model_a": predictions["model_a"]})


def test_rank_biserial_is_pingouins_and_the_paired_p_is_scipys_with_holm_from_statsmodels():
    rng = np.random.default_rng(1)
    long, _ = same_faces(predictions_of(rng, 300, noise_a=7.0))
    tests = paired_model_tests(long, features=("race",), estimation=Estimation(min_n=10, n_boot=200, seed=3))
    absolute = long.assign(error=(long["predicted_age"] - long["age"]).abs()).pivot(
        index="image_id", columns="model", values="error"
    )
    race = long.drop_duplicates("image_id").set_index("image_id")["race"].loc[absolute.index]
    for row in tests.itertuples():
        mask = (
            np.ones(len(absolute), bool)
            if row.grouping == "overall"
            else (race.map({0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}) == row.group).to_numpy()
        )
        a, b = absolute["model_a"][mask], absolute["model_b"][mask]
        assert row.n == mask.sum()
        assert row.p_unc == pytest.approx(st.wilcoxon(a, b).pvalue, rel=1e-12)
        assert row.rank_biserial == pytest.approx(pg.wilcoxon(a, b)["RBC"].iloc[0], abs=1e-12)
        assert row.mean_difference == pytest.approx((a - b).mean())
        assert row.rank_biserial_ci_low <= row.rank_biserial <= row.rank_biserial_ci_high
    np.testing.assert_allclose(tests["p_corr"], multipletests(tests["p_unc"], method="holm")[1], rtol=1e-12)


def test_rank_biserial_of_a_block_of_replicates_is_each_replicates():
    d = np.random.default_rng(2).normal(0.3, 1, (4, 50))
    d[0, :5] = 0.0  # zero differences are dropped, as Wilcoxon drops them
    block = rank_biserial(d)
    for row, value in zip(d, block):
        kept = row[row != 0]
        ranks = st.rankdata(np.abs(kept))
        assert value == pytest.approx((ranks[kept > 0].sum() - ranks[kept < 0].sum()) / ranks.sum())


def test_the_paired_test_holds_its_size_when_the_models_are_exchangeable():
    # 300 null datasets: both models' errors from the same distribution, face by face (error depends on
    # age only). The overall test must reject at most alpha + 2 Monte-Carlo standard errors.
    rng = np.random.default_rng(4)
    rejections, simulations, alpha = 0, 300, 0.05
    for _ in range(simulations):
        long, _ = same_faces(predictions_of(rng, 120))
        overall = paired_model_tests(long, features=(), estimation=Estimation(min_n=10, n_boot=10, seed=0)).iloc[0]
        rejections += overall["p_corr"] < alpha
    rate = rejections / simulations
    assert rate <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / simulations)


def test_a_worse_model_in_one_group_is_named_there_and_only_there():
    long, _ = same_faces(predictions_of(np.random.default_rng(5), 1500, race_effect=12.0))
    tests = paired_model_tests(long, features=("race",), estimation=Estimation(min_n=10, n_boot=200, seed=6)).set_index(
        ["grouping", "group"]
    )
    black = tests.loc[("race", "Black")]
    assert black["p_corr"] < 1e-6 and black["rank_biserial"] > 0 and black["verdict"] == "model_b has smaller errors"
    others = tests.drop(index=[("race", "Black"), ("overall", "all")])
    assert (others["verdict"] == "no difference shown").mean() >= 0.75


def test_metrics_spread_and_leaderboard_agree_with_the_group_rows():
    long, _ = same_faces(predictions_of(np.random.default_rng(8), 900, noise_a=3.0, race_effect=8.0))
    metrics = model_metrics(long, estimation=Estimation(n_boot=200, seed=1))
    for model, part in long.groupby("model"):  # noqa: B007 (read by the query as @model)
        mae = (part["predicted_age"] - part["age"]).abs().mean()
        assert metrics.query("model == @model and grouping == 'overall'")["mae"].iloc[0] == pytest.approx(mae)
    spread = model_spread(long, features=("race",), estimation=Estimation(n_boot=200, seed=1))
    mae_spread = spread[spread["metric"] == "mae"].set_index("model")
    for model in ("model_a", "model_b"):
        groups = metrics.query("model == @model and grouping == 'race'")
        assert mae_spread.loc[model, "max_minus_min"] == pytest.approx(groups["mae"].max() - groups["mae"].min())
        assert mae_spread.loc[model, "gini"] == pytest.approx(float(gini(groups["mae"].to_numpy())))
    gates = model_gate_metrics(long)
    rates = gates.query("grouping == 'race' and measure == 'minors_accepted' and challenge_age == 25")
    gate_spread = spread[spread["metric"] == "minors_accepted at 25"].set_index("model")
    for model, part in rates.groupby("model"):
        large = part[part["n"] >= 30]
        assert gate_spread.loc[model, "max_minus_min"] == pytest.approx(large["rate"].max() - large["rate"].min())
    board = leaderboard(metrics, spread).set_index("model")
    assert board["mae"].is_monotonic_increasing
    assert board.loc["model_a", "race_mae_worst_group"] == "Black"
    assert board.loc["model_a", "race_mae_range"] > board.loc["model_b", "race_mae_range"]
    assert board.loc["model_a", "race_mae_range_ci_low"] > 0

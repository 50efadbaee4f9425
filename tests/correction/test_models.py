"""Corrections recover a planted offset; CV picks the degree within calibration; features are checked."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from dex_bias.correction.models import (
    CorrectionFeatureError,
    fit_bin_rule,
    fit_regression,
    group_guard,
    predicted_age_bin,
    select_correction,
)
from tests.correction.conftest import planted_predictions

PLANTED = {1: -8.0}  # race 1 (Black) is estimated 8 years too young


def test_bin_rule_recovers_the_planted_offset_in_every_cell_of_the_group():
    calibration = planted_predictions(n=4000, seed=4, race_offset=PLANTED, noise=2.0)
    rule = fit_bin_rule(calibration, min_cell_n=5)
    cells = rule.cells[rule.cells["n"] >= 30]
    planted = cells[cells["race"] == 1]
    others = cells[cells["race"] != 1]
    # The rule's offset is the cell's mean residual; interior bins are free of clipping effects.
    interior = planted["predicted_age_bin"].isin(["25-39", "40-59"])
    assert np.allclose(planted.loc[interior, "offset"], 8.0, atol=1.0)
    assert np.allclose(others.loc[others["predicted_age_bin"].isin(["25-39", "40-59"]), "offset"], 0.0, atol=1.0)
    direct = calibration.assign(bin=predicted_age_bin(calibration["predicted_age"]))
    one = direct[(direct["race"] == 1) & (direct["gender"] == 0) & (direct["bin"] == "25-39")]
    row = rule.cells.query("race == 1 and gender == 0 and predicted_age_bin == '25-39'").iloc[0]
    assert row["offset"] == pytest.approx((one["age"] - one["predicted_age"]).mean())


def test_bin_edges_follow_the_study():
    # Each bin's lowest and highest estimate, with the bin it must fall in.
    expected = {0: "<25", 24.99: "<25", 25.0: "25-39", 39.9: "25-39"}
    expected |= {40.0: "40-59", 59.99: "40-59", 60.0: "60+", 101: "60+"}
    assert list(predicted_age_bin(list(expected))) == list(expected.values())


def test_regression_recovers_planted_race_and_gender_offsets():
    calibration = planted_predictions(n=3000, seed=5, race_offset=PLANTED, gender_offset=3.0, noise=2.0)
    model = fit_regression(calibration, degree=1)
    coefficients = dict(zip(["intercept", "slope", "gender", *[f"race_{r}" for r in model.races]], model.coefficients))
    assert model.reference_race == 0
    assert coefficients["race_1"] == pytest.approx(8.0, abs=0.5)
    assert coefficients["gender"] == pytest.approx(-3.0, abs=0.5)
    for race in (2, 3, 4):
        assert coefficients[f"race_{race}"] == pytest.approx(0.0, abs=0.5)
    held_out = planted_predictions(n=1000, seed=6, race_offset=PLANTED, gender_offset=3.0, noise=2.0)
    before = np.abs(held_out["predicted_age"] - held_out["age"])[held_out["race"] == 1].mean()
    after = np.abs(model.predict(held_out) - held_out["age"])[held_out["race"] == 1].mean()
    assert before > 5.5 and after < 2.5  # −8 for men, −5 for women of the planted group


def test_cross_validation_picks_a_curved_correction_when_the_bias_is_curved():
    calibration = planted_predictions(n=1500, seed=7, noise=2.0)
    # Compress old ages: a linear correction cannot undo a quadratic distortion.
    calibration["predicted_age"] = (
        calibration["age"]
        - 0.004 * (calibration["age"] - 20) ** 2
        + np.random.default_rng(0).normal(0, 2.0, len(calibration))
    )
    models, chosen, table = select_correction(calibration, max_degree=3, folds=5, seed=0, method="regression")
    assert chosen.startswith(("regression_deg2", "regression_deg3"))
    scores = table.set_index("candidate")["cv_mae"]
    assert scores["regression_deg1"] > scores[chosen]
    assert scores["none"] > scores[chosen]
    assert table["chosen"].sum() == 1 and table["calibration_n"].eq(1500).all()


def _calibrated(n: int, seed: int) -> pd.DataFrame:
    """Estimates already calibrated: the true age is the estimate plus noise independent of everything,
    so E[age | estimate, gender, race] is the estimate and no correction can lower the error."""
    faces = planted_predictions(n=n, seed=seed, noise=0.0)
    rng = np.random.default_rng(seed + 100)
    faces["predicted_age"] = rng.uniform(5, 80, n)
    faces["age"] = np.clip(np.round(faces["predicted_age"] + rng.normal(0, 6, n)), 1, 116).astype(int)
    return faces


def test_auto_keeps_no_correction_when_nothing_is_wrong():
    # Checked on fresh held-out faces, not against the selection rule itself: what the selection
    # keeps must not make new faces worse, and on calibrated estimates it should keep nothing.
    kept_none, worse = 0, 0
    for seed in range(6):
        calibration, held_out = _calibrated(600, seed), _calibrated(2000, seed + 50)
        models, chosen, table = select_correction(calibration, max_degree=3, folds=5, seed=seed, method="auto")
        kept_none += chosen == "none"
        before = np.abs(held_out["predicted_age"] - held_out["age"])
        after = np.abs(models[chosen].predict(held_out) - held_out["age"])
        change = after - before
        worse += change.mean() > 2 * change.std(ddof=1) / np.sqrt(len(change))
        if chosen == "none":
            assert table["decision"].iloc[0].startswith("none:") and "nothing" in table["decision"].iloc[0]
    assert kept_none >= 5 and worse == 0


def test_race_slopes_undo_a_groups_compression_that_an_offset_cannot():
    def compressed(n, seed):
        faces = planted_predictions(n=n, seed=seed, noise=2.0)
        weak = faces["race"] == 2
        # Weak age cues: the group's estimates shrink halfway towards 40 (old faces read young, young old).
        faces.loc[weak, "predicted_age"] = (
            40 + 0.5 * (faces.loc[weak, "age"] - 40) + np.random.default_rng(seed).normal(0, 2.0, weak.sum())
        )
        return faces

    calibration, held_out = compressed(2000, 1), compressed(2000, 2)
    models, chosen, table = select_correction(calibration, max_degree=1, folds=5, seed=0)
    assert chosen == "regression_deg1_race_slopes", table[["candidate", "cv_mae", "passes_guard"]]
    group = held_out["race"] == 2
    error = {
        name: np.abs(models[name].predict(held_out) - held_out["age"])[group].mean()
        for name in ("none", "regression_deg1", "regression_deg1_race_slopes")
    }
    assert error["regression_deg1_race_slopes"] < 0.3 * error["none"]
    assert error["regression_deg1_race_slopes"] < 0.5 * error["regression_deg1"]
    others = ~group
    none_others = np.abs(held_out["predicted_age"] - held_out["age"])[others].mean()
    assert np.abs(models[chosen].predict(held_out) - held_out["age"])[others].mean() < none_others + 0.2


def test_guard_vetoes_a_correction_that_makes_one_group_worse_beyond_noise():
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"race": np.repeat([0, 1, 2], 200), "gender": np.tile([0, 1], 300)})
    baseline = rng.exponential(5.0, 600)
    helps = baseline - 1.0 + rng.normal(0, 0.5, 600)
    hurts_one = helps.copy()
    hurts_one[data.race == 2] += 1.6  # group 2 ends 0.6 years worse than uncorrected
    passing = group_guard(data, helps, baseline, features=("race", "gender"), min_group_n=30, z=2.0)
    failing = group_guard(data, hurts_one, baseline, features=("race", "gender"), min_group_n=30, z=2.0)
    assert passing.passes and not failing.passes and failing.worst_group == "race=2"
    change = (hurts_one - baseline)[data.race == 2]
    assert failing.worst_change == pytest.approx(change.mean())
    assert failing.worst_se == pytest.approx(st.sem(change))
    assert failing.worst_change > 2 * failing.worst_se > 0


def test_predict_names_missing_and_unusable_features_and_survives_pickling():
    calibration = planted_predictions(n=400, seed=9, race_offset=PLANTED)
    model = fit_regression(calibration, degree=2)
    with pytest.raises(CorrectionFeatureError, match=r"missing: \['race'\]"):
        model.predict(calibration.drop(columns="race"))
    with pytest.raises(CorrectionFeatureError, match="'gender' on every row; 1 rows"):
        model.predict(calibration.assign(gender=[np.nan] + [0] * (len(calibration) - 1)))
    with pytest.raises(CorrectionFeatureError, match="race must be a UTKFace code"):
        model.predict(calibration.assign(race=7))
    restored = pickle.loads(pickle.dumps(model))
    assert np.array_equal(restored.predict(calibration), model.predict(calibration))
    assert restored.features == ("predicted_age", "gender", "race")

"""Corrections recover a planted offset; CV picks the degree within calibration; features are checked."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dex_bias.correction.models import (
    CorrectionFeatureError, fit_bin_rule, fit_regression, predicted_age_bin, select_correction,
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
    assert list(predicted_age_bin([0, 24.99, 25.0, 39.9, 40.0, 59.99, 60.0, 101])) == [
        "<25", "<25", "25-39", "25-39", "40-59", "40-59", "60+", "60+"]


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
    calibration["predicted_age"] = calibration["age"] - 0.004 * (calibration["age"] - 20) ** 2 + \
        np.random.default_rng(0).normal(0, 2.0, len(calibration))
    models, chosen, table = select_correction(calibration, max_degree=3, folds=5, seed=0, method="regression")
    assert chosen in {"regression_deg2", "regression_deg3"}
    scores = table.set_index("candidate")["cv_mae"]
    assert scores["regression_deg1"] > scores[chosen]
    assert scores["none"] > scores[chosen]
    assert table["chosen"].sum() == 1 and table["calibration_n"].eq(1500).all()


def test_auto_keeps_no_correction_when_nothing_is_wrong():
    calibration = planted_predictions(n=800, seed=8, noise=3.0)
    models, chosen, table = select_correction(calibration, max_degree=2, folds=5, seed=0, method="auto")
    scores = table.set_index("candidate")["cv_mae"]
    assert scores[chosen] == scores[table["kept"].to_numpy()].min()


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

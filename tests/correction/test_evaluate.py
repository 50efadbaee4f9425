"""Evaluation is out of sample: it never touches calibration rows, and small groups are labelled."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dex_bias.correction.corrected import corrected_predictions_table
from dex_bias.correction.evaluate import correction_effects, gate_effects
from dex_bias.correction.models import fit_bin_rule, fit_regression
from dex_bias.correction.split import CALIBRATION, HELD_OUT
from dex_bias.pipelines.correct.nodes import evaluate_corrections, fit_corrections, split_calibration
from dex_bias.stats.engine import Estimation
from tests.conftest import base_parameters
from tests.correction.conftest import planted_predictions

PLANTED = {1: -8.0}


@pytest.fixture(scope="module")
def params():
    # 300 replicates: enough for the tests' margins, quick on 2 cores.
    return base_parameters({"correct.evaluation.n_boot": 300}).correct


def _overall(metrics: pd.DataFrame, correction: str) -> pd.Series:
    return metrics[(metrics["correction"] == correction) & (metrics["grouping"] == "overall")].iloc[0]


def test_a_correction_fitted_on_shuffled_labels_does_not_look_better_held_out(params):
    faces = planted_predictions(n=1000, seed=10, race_offset=PLANTED)
    split = split_calibration(faces, params)
    calibration = (split["correction_part"] == CALIBRATION).to_numpy()
    shuffled = faces.copy()
    # Calibration labels become noise; held-out labels stay true.
    shuffled.loc[calibration, "age"] = np.random.default_rng(0).permutation(shuffled.loc[calibration, "age"].to_numpy())
    # Cells of 5 rows (the old default) so that the bin rule fits offsets to the noise at all.
    candidates, chosen, _ = fit_corrections(shuffled, split, replace(params, method="bin_rule", min_cell_n=5))
    metrics, _ = evaluate_corrections(shuffled, split, candidates, chosen, params)
    held_out = faces[~calibration]
    direct_mae = (held_out["predicted_age"] - held_out["age"]).abs().mean()
    for name in ("bin_rule", next(n for n in candidates if n.startswith("regression"))):
        overall = _overall(metrics, name)
        # "Before" is the held-out MAE against true labels: no shuffled (calibration) label is in it.
        assert overall["n"] == len(held_out)
        assert overall["mae_before"] == pytest.approx(direct_mae)
        assert overall["mae_after"] > overall["mae_before"]
        assert overall["mae_change_ci_low"] > 0


def test_a_correction_fitted_on_true_labels_helps_the_planted_group_with_a_ci(params):
    # 4000 faces: every gender × race × bin cell of the bin rule then has the 30 calibration rows
    # it needs (at 1000 faces it has about 12 and rightly corrects nothing).
    faces = planted_predictions(n=4000, seed=10, race_offset=PLANTED)
    split = split_calibration(faces, params)
    candidates, chosen, cv_table = fit_corrections(faces, split, params)
    metrics, gates = evaluate_corrections(faces, split, candidates, chosen, params)
    planted = metrics[(metrics["grouping"] == "race") & (metrics["group"] == "Black")]
    assert set(planted["correction"]) == set(candidates) - {"none"}
    for row in planted.itertuples():
        assert row.mae_change_ci_high < -4.0  # about 8 years of offset taken back, of ~8.5 MAE
        assert row.mae_before_ci_low < row.mae_before < row.mae_before_ci_high
        assert row.status == "ok"
    assert metrics["chosen"].sum() == (metrics["correction"] == chosen.name).sum() > 0
    assert set(gates["estimate"]) == {"uncorrected", *set(candidates) - {"none"}}
    uncorrected_overall = gates[(gates["estimate"] == "uncorrected") & (gates["grouping"] == "overall")]
    held_out = faces[(split["correction_part"] == HELD_OUT).to_numpy()]
    minors = held_out[held_out["age"] < 18]
    at_18 = uncorrected_overall[
        (uncorrected_overall["measure"] == "minors_accepted") & (uncorrected_overall["challenge_age"] == 18)
    ].iloc[0]
    assert at_18["n"] == len(minors) and at_18["events"] == int((minors["predicted_age"] >= 18).sum())


def test_a_group_too_small_for_a_ci_is_reported_as_such_without_nan_crash():
    calibration = planted_predictions(n=600, seed=11, race_offset=PLANTED)
    held_out = planted_predictions(n=300, seed=12, race_offset=PLANTED)
    # Only three held-out faces of race 4: enough for a point estimate, not for an interval.
    held_out = pd.concat([held_out[held_out["race"] != 4], held_out[held_out["race"] == 4].head(3)])
    corrections = {"bin_rule": fit_bin_rule(calibration), "regression_deg1": fit_regression(calibration, 1)}
    metrics = correction_effects(
        held_out, corrections, chosen="bin_rule", min_n_ci=10, estimation=Estimation(n_boot=200, min_n=30)
    )
    tiny = metrics[(metrics["grouping"] == "race") & (metrics["group"] == "Others")]
    assert len(tiny) == 2 and (tiny["n"] == 3).all()
    assert (tiny["status"] == "too_few_for_ci").all()
    assert tiny[["mae_before_ci_low", "mae_after_ci_high", "mae_change_ci_low"]].isna().all().all()
    assert tiny[["mae_before", "mae_after", "rmse_after", "bias_after"]].notna().all().all()
    assert (metrics.loc[metrics["n"] >= 30, "status"] == "ok").all()
    gates = gate_effects(held_out, corrections, chosen="bin_rule")
    # A rate is missing exactly where nobody is counted ("no cases", never 0 %), and nowhere else.
    assert gates.loc[gates["status"] != "no_cases", "rate"].notna().all()
    assert (gates.loc[gates["rate"].isna(), "n"] == 0).all()


def test_corrected_predictions_hold_only_held_out_rows_in_the_predictions_contract():
    faces = planted_predictions(n=300, seed=13, race_offset=PLANTED)
    split = pd.DataFrame(
        {
            "image_id": faces["image_id"],
            "correction_part": np.where(np.arange(len(faces)) % 3 == 0, CALIBRATION, HELD_OUT),
        }
    )
    correction = fit_bin_rule(faces[split["correction_part"] == CALIBRATION], min_cell_n=5)
    table = corrected_predictions_table(faces, split, correction)
    held_ids = split.loc[split["correction_part"] == HELD_OUT, "image_id"]
    assert list(table["image_id"]) == list(held_ids)
    assert list(table.columns[: len(faces.columns)]) == list(faces.columns)
    original = faces.set_index("image_id").loc[table["image_id"]]
    assert np.array_equal(table["uncorrected_age"], original["predicted_age"])
    assert np.allclose(table["predicted_age"], correction.predict(original.reset_index()))
    assert not np.allclose(table["predicted_age"], table["uncorrected_age"])
    assert (table["model_name"] == "synthetic+bin_rule").all()


def test_intervals_carry_the_uncertainty_of_the_fit_when_calibration_is_bootstrapped():
    held_out = planted_predictions(n=1500, seed=14, race_offset=PLANTED, noise=6.0)
    widths = {}
    for n_calibration in (60, 3000):
        calibration = planted_predictions(n=n_calibration, seed=15, race_offset=PLANTED, noise=6.0)
        correction = {"regression_deg1": fit_regression(calibration, 1, min_group_n=5)}
        common = dict(sensitive_features=("race",), estimation=Estimation(n_boot=400, seed=3))
        refit = correction_effects(held_out, correction, calibration=calibration, **common)
        fixed = correction_effects(held_out, correction, **common)
        row, row_fixed = (frame[frame["grouping"] == "overall"].iloc[0] for frame in (refit, fixed))
        direct = np.mean(
            np.abs(correction["regression_deg1"].predict(held_out) - held_out["age"])
            - np.abs(held_out["predicted_age"] - held_out["age"])
        )
        assert row["mae_change"] == pytest.approx(direct) == pytest.approx(row_fixed["mae_change"])
        assert "refitted" in row["interval"] and "held fixed" in row_fixed["interval"]
        widths[n_calibration] = (
            row["mae_change_ci_high"] - row["mae_change_ci_low"],
            row_fixed["mae_change_ci_high"] - row_fixed["mae_change_ci_low"],
        )
    # Fitted on 60 faces, the correction itself is uncertain: refitting widens the interval a lot;
    # fitted on 3000, hardly at all.
    assert widths[60][0] > 1.8 * widths[60][1]
    assert widths[3000][0] < 1.5 * widths[3000][1]

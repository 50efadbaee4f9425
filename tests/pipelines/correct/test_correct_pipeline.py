"""`correct` in-process on an external CSV through the env catalogs, the report re-run on corrected
estimates; end to end on the demo run (slow)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from dex_bias.parameters import project_parameters
from dex_bias.pipelines.correct.pipeline import create_pipeline as correct_pipeline
from dex_bias.pipelines.report.pipeline import create_pipeline as report_pipeline
from dex_bias.utkface import RACE_NAMES
from tests.conftest import base_parameters, project_catalog, run_in_process


@pytest.mark.slow
def test_demo_reports_the_correction_effect_on_the_planted_group_out_of_sample(demo_run):
    catalog = project_catalog(demo_run, conf=demo_run / "conf")
    planted = RACE_NAMES[project_parameters(demo_run / "conf").ingest.demo.planted_race]
    metrics = catalog.load("correction_metrics")
    selection = catalog.load("correction_selection")
    split = catalog.load("correction_split")
    corrected = catalog.load("corrected_predictions")
    predictions = catalog.load("predictions")
    model = catalog.load("correction_model")

    chosen = metrics[metrics["chosen"]]
    assert chosen.empty == (model.method == "none")
    decision = selection["decision"].iloc[0]
    assert decision.startswith(model.name + ":")  # said in words, "nothing helps" when none is kept
    assert ("nothing" in decision) == (model.method == "none")
    # When nothing helps ('none' is kept), judge the first candidate evaluated: the bin rule is no
    # longer always among them (with 30-row cells it corrects nothing on the demo's calibration half).
    evaluated = metrics[
        metrics["correction"] == (chosen["correction"].iloc[0] if len(chosen) else metrics["correction"].iloc[0])
    ]
    row = evaluated[(evaluated["grouping"] == "race") & (evaluated["group"] == planted)].iloc[0]
    held_out = split[split["correction_part"] == "held_out"]
    calibration = split[split["correction_part"] == "calibration"]
    truth = predictions.set_index("image_id").loc[held_out["image_id"]]
    planted_code = {name: code for code, name in RACE_NAMES.items()}[planted]
    planted_rows = truth[truth["race"] == planted_code]
    assert row["n"] == len(planted_rows) >= 10
    assert row["mae_before"] == pytest.approx((planted_rows["predicted_age"] - planted_rows["age"]).abs().mean())
    assert row["mae_change_ci_low"] <= row["mae_change"] <= row["mae_change_ci_high"]
    assert row["mae_after_ci_low"] <= row["mae_after"] <= row["mae_after_ci_high"]
    assert row["status"] in {"ok", "small_group"}

    # The corrected table is the held-out part only, never a calibration row, in the predictions contract.
    assert set(corrected["image_id"]) == set(held_out["image_id"])
    assert set(corrected["image_id"]).isdisjoint(calibration["image_id"])
    assert set(predictions.columns) <= set(corrected.columns)
    assert np.allclose(corrected["uncorrected_age"], truth.loc[corrected["image_id"], "predicted_age"])
    assert corrected["model_name"].str.endswith("+" + model.name).all()
    assert np.allclose(
        corrected["predicted_age"], model.predict(corrected.assign(predicted_age=corrected["uncorrected_age"]))
    )

    gender = catalog.load("gender_metrics")
    if "prob_female" in predictions and predictions["prob_female"].notna().any():
        overall = gender[gender["grouping"] == "overall"].iloc[0]
        assert overall["n"] == predictions["prob_female"].notna().sum()

    # `--env corrected` reads the corrected estimates as `predictions`.
    as_predictions = project_catalog(demo_run, env="corrected", conf=demo_run / "conf").load("predictions")
    pd.testing.assert_frame_equal(as_predictions, corrected)


def test_correct_runs_on_an_external_csv_and_the_report_reruns_on_corrected_estimates(tmp_path, caplog):
    rng = np.random.default_rng(3)
    n = 400
    age, gender, race = rng.integers(1, 80, n), rng.integers(0, 2, n), rng.integers(0, 5, n)
    predicted = np.clip(age + rng.normal(0, 4, n) - 9.0 * (race == 2), 0, None)  # Asian faces read young
    ids = [f"{a}_{g}_{r}_2017{i:010d}.jpg.chip.jpg" for i, (a, g, r) in enumerate(zip(age, gender, race))]
    (tmp_path / "data" / "01_raw").mkdir(parents=True)
    pd.DataFrame({"image_id": ids, "predicted_age": predicted}).to_csv(
        tmp_path / "data" / "01_raw" / "external_predictions.csv", index=False
    )

    # `kedro run --pipelines=correct --env external`: in-process, through that env's catalog.
    with caplog.at_level(logging.INFO):
        run_in_process(correct_pipeline(), catalog=project_catalog(tmp_path, env="external"))
    assert "Gender metrics skipped: the predictions have no 'prob_female' column" in caplog.text
    catalog = project_catalog(tmp_path, env="external")
    metrics = catalog.load("correction_metrics")
    asian = metrics[(metrics["grouping"] == "race") & (metrics["group"] == "Asian")]
    # Both corrections take back part of the 9 years, out of sample; the chosen one at least 2.
    assert (asian["mae_change_ci_high"] < 0).all()
    assert (asian.loc[asian["chosen"], "mae_change_ci_high"] < -2).all() and asian["chosen"].sum() == 1
    assert catalog.load("gender_metrics").empty
    corrected = catalog.load("corrected_predictions")
    assert len(corrected) == (catalog.load("correction_split")["correction_part"] == "held_out").sum()
    pd.testing.assert_frame_equal(project_catalog(tmp_path, env="corrected").load("predictions"), corrected)

    # `kedro run --pipelines=report --env corrected`: the report reads the corrected estimates.
    run_in_process(
        report_pipeline(),
        parameters=base_parameters({"report.bootstrap.n_boot": 200}),
        catalog=project_catalog(tmp_path, env="corrected"),
    )
    group_metrics = project_catalog(tmp_path, env="corrected").load("group_metrics")
    overall = group_metrics[group_metrics["grouping"] == "overall"].iloc[0]
    assert overall["n"] == len(corrected)
    assert overall["mae"] == pytest.approx((corrected["predicted_age"] - corrected["age"]).abs().mean())

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.metrics import balanced_mae, group_metrics


def test_group_rows_match_direct_numpy(predictions):
    table = group_metrics(predictions, n_boot=200, seed=3, min_n=60)
    black = predictions[predictions["race"] == 1]
    error = black["predicted_age"].to_numpy() - black["age"].to_numpy()
    row = table[(table["grouping"] == "race") & (table["group"] == "Black")].iloc[0]
    assert row["n"] == len(black)
    assert row["mae"] == pytest.approx(np.abs(error).mean())
    assert row["median_absolute_error"] == pytest.approx(np.median(np.abs(error)))
    assert row["mean_signed_error"] == pytest.approx(error.mean())
    assert row["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    assert row["within_5"] == pytest.approx((np.abs(error) <= 5).mean())
    assert row["within_10"] == pytest.approx((np.abs(error) <= 10).mean())
    assert row["mae_ci_low"] < row["mae"] < row["mae_ci_high"]
    assert row["mean_signed_error_ci_low"] < row["mean_signed_error"] < row["mean_signed_error_ci_high"]
    overall = table[table["grouping"] == "overall"].iloc[0]
    assert overall["n"] == len(predictions)


def test_intersections_bands_and_min_n_flag(predictions):
    table = group_metrics(predictions, n_boot=50, bands=((0, 12), (13, 18), (19, 25), (26, 100)), min_n=40)
    cells = table[table["grouping"] == "race × gender × age_band"]
    teen_asian_women = predictions[(predictions.race == 2) & (predictions.gender == 1)
                                   & predictions.age.between(13, 18)]
    row = cells[cells["group"] == "Asian · female · 13-18"].iloc[0]
    assert row["n"] == len(teen_asian_women)
    assert row["small_group"] == (len(teen_asian_women) < 40)
    assert cells["n"].sum() == predictions["age"].between(0, 100).sum()
    assert table["small_group"].any() and not table["small_group"].all()


def test_balanced_mae_is_mean_over_age_year_gender_cells():
    y_true = np.array([10, 10, 10, 10, 30])
    y_pred = np.array([12, 12, 12, 12, 40])
    gender = np.array([0, 0, 0, 0, 1])
    # cells: (10, male) MAE 2, (30, female) MAE 10 -> 6, though the plain MAE is 3.6
    assert balanced_mae(y_true, y_pred, gender) == pytest.approx(6.0)
    frame = pd.DataFrame({"age": y_true, "predicted_age": y_pred, "gender": gender, "race": 0})
    assert group_metrics(frame, n_boot=10).iloc[0]["balanced_mae"] == pytest.approx(6.0)

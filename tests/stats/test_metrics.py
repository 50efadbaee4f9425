import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.engine import Estimation
from dex_bias.stats.metrics import balanced_mae, group_metrics
from tests.stats.conftest import assert_interval_near, scipy_interval


def test_group_rows_match_direct_numpy(predictions):
    table = group_metrics(predictions, estimation=Estimation(n_boot=200, seed=3, min_n=60))
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
    table = group_metrics(
        predictions, estimation=Estimation(n_boot=50, bands=((0, 12), (13, 18), (19, 25), (26, 100)), min_n=40)
    )
    cells = table[table["grouping"] == "race × gender × age_band"]
    teen_asian_women = predictions[
        (predictions.race == 2) & (predictions.gender == 1) & predictions.age.between(13, 18)
    ]
    row = cells[cells["group"] == "Asian · female · 13-18"].iloc[0]
    assert row["n"] == len(teen_asian_women)
    assert row["small_group"] == (len(teen_asian_women) < 40)
    assert cells["n"].sum() == predictions["age"].between(0, 100).sum()
    assert table["small_group"].any() and not table["small_group"].all()


def test_balanced_mae_weighs_fixed_reference_cells_equally():
    bands = ((0, 19), (20, 39))
    y_true = np.array([10, 10, 10, 10, 30, 12, 31, 33])
    y_pred = np.array([12, 12, 12, 12, 40, 15, 30, 30])
    gender = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    # cells (0-19, male) MAE 2, (0-19, female) 3, (20-39, male) 1, (20-39, female) (10 + 3) / 2 = 6.5
    frame = pd.DataFrame({"age": y_true, "err": np.abs(y_pred - y_true), "gender": gender})
    frame["band"] = np.where(frame.age <= 19, 0, 1)
    direct = frame.groupby(["band", "gender"])["err"].mean()
    assert len(direct) == 4 and direct.tolist() == [2.0, 3.0, 1.0, 6.5]
    assert balanced_mae(y_true, y_pred, gender, bands) == pytest.approx(direct.mean())  # 3.125; plain MAE 3.25
    # A group lacking a reference cell has no balanced MAE: the mean of the cells it has would
    # weigh it differently from the others (the fault the fixed cells remove).
    assert np.isnan(balanced_mae(y_true[:5], y_pred[:5], gender[:5], bands))


def test_balanced_mae_interval_matches_scipys_bootstrap_resampling_each_cell(predictions):
    bands = ((0, 29), (30, 59), (60, 89))
    table = group_metrics(
        predictions,
        sensitive_features=("race",),
        intersections=False,
        balanced_bands=bands,
        estimation=Estimation(n_boot=4000, seed=2),
    )
    black = predictions[predictions.race == 1]
    cells = [
        np.abs(part.predicted_age - part.age).to_numpy()
        for _, part in black.groupby([pd.cut(black.age, [-1, 29, 59, 89]), black.gender], observed=True)
    ]
    assert len(cells) == 6
    row = table[table.group == "Black"].iloc[0]
    assert row.balanced_mae == pytest.approx(np.mean([c.mean() for c in cells]))
    # scipy's multi-sample bootstrap resamples each sample on its own: the cell-stratified bootstrap.
    reference = scipy_interval(
        cells, lambda *c, axis: np.mean([x.mean(axis=axis) for x in c], axis=0), n_resamples=4000, seed=5
    )
    assert_interval_near(row.balanced_mae_ci_low, row.balanced_mae_ci_high, reference, 0.12)
    age_band_rows = group_metrics(predictions, intersections=False, estimation=Estimation(n_boot=10))
    assert age_band_rows.loc[age_band_rows.grouping == "age_band", "balanced_mae"].isna().all()
    assert age_band_rows.loc[age_band_rows.grouping == "age_band", "notes"].str.contains("not defined").all()

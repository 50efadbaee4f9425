"""Image-quality covariates from landmarks and MAE by their bins per group."""

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.engine import Estimation
from dex_bias.stats.quality import quality_covariates, quality_metrics
from tests.stats.conftest import synthetic_landmarks, synthetic_predictions


def test_interocular_distance_and_yaw_index_follow_the_landmarks():
    ids = [f"img{i}" for i in range(5)]
    scale = np.array([0.5, 1.0, 1.5, 1.0, 1.0])
    yaw = np.array([0.0, 0.0, 0.0, 0.3, -0.3])
    landmarks = synthetic_landmarks(ids, seed=1, scale=scale, yaw=yaw)
    covariates = quality_covariates(landmarks).set_index("image_id")
    right = (
        landmarks[[f"x_{i}" for i in range(36, 42)]].mean(axis=1),
        landmarks[[f"y_{i}" for i in range(36, 42)]].mean(axis=1),
    )
    left = (
        landmarks[[f"x_{i}" for i in range(42, 48)]].mean(axis=1),
        landmarks[[f"y_{i}" for i in range(42, 48)]].mean(axis=1),
    )
    direct = np.hypot(left[0] - right[0], left[1] - right[1]).to_numpy()
    assert covariates.interocular_distance.to_numpy() == pytest.approx(direct)
    assert covariates.interocular_distance.to_numpy()[:3] == pytest.approx(40 * scale[:3], rel=0.05)
    assert covariates.yaw_index.to_numpy() == pytest.approx(yaw, abs=0.03)
    with pytest.raises(KeyError, match="landmarks lack"):
        quality_covariates(landmarks.drop(columns="x_30"))


def test_mae_per_quality_bin_and_group_matches_pandas():
    df = synthetic_predictions(1200, seed=5)
    rng = np.random.default_rng(2)
    scale = rng.uniform(0.5, 1.5, len(df))
    # Lower resolution, larger error: the covariate matters.
    df["predicted_age"] = df.age + (df.predicted_age - df.age) / scale
    landmarks = synthetic_landmarks(df.image_id, seed=3, scale=scale)
    landmarks = landmarks.iloc[:-50]  # 50 faces without landmarks
    table = quality_metrics(df, landmarks, estimation=Estimation(n_boot=100))
    distance = quality_covariates(landmarks).set_index("image_id").interocular_distance
    joined = df.set_index("image_id").join(distance)
    edges = np.quantile(distance, [0, 0.25, 0.5, 0.75, 1.0])
    joined["bin"] = pd.cut(joined.interocular_distance, edges, include_lowest=True)
    error = (joined.predicted_age - joined.age).abs()
    direct = error.groupby([joined.bin, joined.race], observed=True).mean()
    rows = table[(table.covariate == "interocular_distance") & (table.grouping == "race")]
    smallest = rows[rows.bin == rows.bin.iloc[0]]
    first_bin = direct.index.levels[0][0]
    assert smallest.set_index("group").loc["White", "mae"] == pytest.approx(direct.loc[(first_bin, 0)])
    overall = table[(table.covariate == "interocular_distance") & (table.grouping == "overall")]
    measured = overall[overall.bin != "not measured"]
    assert measured.n.tolist() == joined.bin.value_counts(sort=False).tolist()
    assert overall.set_index("bin").loc["not measured", "n"] == 50
    assert measured.mae.iloc[0] > measured.mae.iloc[-1]  # low resolution, larger error
    assert quality_metrics(df, landmarks.iloc[:0]).empty

import numpy as np
import pandas as pd

from dex_bias.explain.groups import group_mean_weights, stratified_sample


def _table(n=500, seed=0):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "image_id": [f"{i}.jpg" for i in range(n)],
            "race": rng.choice(5, n, p=[0.6, 0.05, 0.15, 0.15, 0.05]),
            "gender": rng.integers(0, 2, n),
            "age_band": rng.choice(["0-12", "13-17", "18-24", "25-39"], n),
        }
    )
    return table


def test_stratified_sample_keeps_every_group_and_its_size():
    table = _table()
    groups = table.groupby(["race", "gender", "age_band"]).ngroups
    sample = stratified_sample(table, 60, seed=3)
    assert len(sample) == 60
    assert sample.groupby(["race", "gender", "age_band"]).ngroups == groups
    assert sample.index.is_unique and sample.index.isin(table.index).all()
    assert sample.equals(stratified_sample(table, 60, seed=3))
    assert not sample.equals(stratified_sample(table, 60, seed=4))
    # the largest group gets more places than the smallest: proportional beyond one each
    counts = sample.groupby("race").size()
    assert counts[0] > counts[1]
    assert stratified_sample(table, None, seed=3) is table
    assert len(stratified_sample(table, 10, seed=3)) == 10  # fewer places than groups


def test_group_means_count_empty_regions_as_zero():
    rows = pd.DataFrame(
        {
            "image_id": ["a", "a", "b", "b"],
            "method": "regions",
            "region": ["nose", "chin", "nose", "chin"],
            "weight": [2.0, 4.0, 1.0, 0.0],
            "region_empty": [False, False, False, True],
            "race": 0,
            "gender": 1,
            "age_band": "18-24",
        }
    )
    table = group_mean_weights(rows).set_index("region")
    assert table.loc["chin", "mean_weight"] == 2.0 and table.loc["chin", "n_empty"] == 1
    assert table.loc["nose", "mean_weight"] == 1.5 and table.loc["nose", "n_images"] == 2
    assert list(table.index) == ["nose", "chin"]  # region order of REGION_NAMES

"""Gender-head metrics: the UTKFace code mapping is pinned, counts and rates match a direct count."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.gender import gender_metrics, predicted_gender
from dex_bias.stats.intervals import wilson_interval


def test_prob_female_at_or_above_one_half_reads_as_code_1_female():
    # UTKFace: 0 male, 1 female. The second study swapped them; this pins the mapping.
    assert list(predicted_gender([0.0, 0.49, 0.5, 0.51, 1.0])) == [0, 0, 1, 1, 1]
    faces = pd.DataFrame(
        {"age": [30, 30, 30, 30], "race": [0, 0, 0, 0], "gender": [1, 1, 0, 0], "prob_female": [0.9, 0.2, 0.1, 0.7]}
    )
    overall = gender_metrics(faces).iloc[0]
    assert overall["female_read_as_female"] == 1 and overall["female_read_as_male"] == 1
    assert overall["male_read_as_male"] == 1 and overall["male_read_as_female"] == 1
    assert overall["accuracy"] == 0.5


def test_counts_rates_and_intervals_per_race_and_band_match_a_direct_count():
    rng = np.random.default_rng(0)
    n = 900
    faces = pd.DataFrame(
        {"age": rng.integers(0, 90, n), "race": rng.integers(0, 5, n), "gender": rng.integers(0, 2, n)}
    )
    right = rng.random(n) < np.where(faces["race"] == 0, 0.9, 0.65)  # accuracy planted by race
    faces["prob_female"] = np.where(right, faces["gender"], 1 - faces["gender"]) * 0.6 + 0.2
    table = gender_metrics(faces)
    assert set(table["grouping"]) == {"overall", "race", "age_band", "race × age_band"}
    white, black = (
        table[(table["grouping"] == "race") & (table["group"] == name)].iloc[0] for name in ("White", "Black")
    )
    assert white["accuracy_ci_low"] > black["accuracy_ci_high"]
    cell = table[(table["race"] == "Indian") & (table["age_band"] == "25-39")].iloc[0]
    part = faces[(faces["race"] == 3) & faces["age"].between(25, 39)]
    guessed = (part["prob_female"] >= 0.5).astype(int)
    males = part["gender"] == 0
    assert cell["n"] == len(part) and cell["n_male"] == males.sum()
    assert cell["male_read_as_female"] == int((males & (guessed == 1)).sum())
    assert cell["male_read_as_female_rate"] == pytest.approx((guessed[males] == 1).mean())
    assert cell["female_read_as_male_rate"] == pytest.approx((guessed[~males] == 0).mean())
    low, high = wilson_interval(int((guessed == part["gender"]).sum()), len(part))
    assert (cell["accuracy_ci_low"], cell["accuracy_ci_high"]) == pytest.approx((low, high))
    assert cell["status"].startswith("small_group")


def test_no_gender_head_is_skipped_with_a_logged_reason(caplog):
    faces = pd.DataFrame({"age": [30, 40], "race": [0, 1], "gender": [0, 1]})
    with caplog.at_level(logging.INFO, logger="dex_bias.stats.gender"):
        assert gender_metrics(faces).empty
        assert gender_metrics(faces.assign(prob_female=np.nan)).empty
    assert "no 'prob_female' column" in caplog.text and "empty on all 2 rows" in caplog.text
    only_women = gender_metrics(faces.assign(gender=1, prob_female=0.8)).iloc[0]
    assert np.isnan(only_women["male_read_as_female_rate"]) and "no_male_faces" in only_women["status"]

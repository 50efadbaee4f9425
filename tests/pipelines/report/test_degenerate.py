"""The report on degenerate inputs: a report that says what could not be computed, never a crash."""

from __future__ import annotations

import html

import pandas as pd
import pytest
from kedro.io import MemoryDataset

from tests.pipelines.report.test_pipeline import _run
from tests.stats.conftest import synthetic_landmarks, synthetic_predictions

BASE = synthetic_predictions(300, seed=9).assign(split="test")
NO_ATTRIBUTIONS = pd.DataFrame(columns=["image_id", "method", "region", "weight"])


@pytest.mark.parametrize("case, predictions", [
    ("zero_rows", BASE.iloc[:0][["image_id", "predicted_age", "split"]]),
    ("one_group", BASE.assign(race=1)),
    ("all_equal", BASE.assign(predicted_age=30.0)),
    ("no_minors", BASE[BASE.age >= 18]),
])
def test_report_says_what_could_not_be_computed(case, predictions):
    out = _run(predictions, MemoryDataset(NO_ATTRIBUTIONS), MemoryDataset(synthetic_landmarks(predictions.image_id)))
    report = html.unescape(out["audit_report"])
    assert "What could not be computed" in report, case
    if case == "zero_rows":
        assert "No faces to audit" in report
    if case == "one_group":
        assert "too_few_groups" in report
    if case == "no_minors":
        assert "no cases" in report and "no_minors" in report

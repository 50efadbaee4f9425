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


@pytest.mark.parametrize(
    "case, predictions",
    [
        ("one_group", BASE.assign(race=1)),
        ("all_equal", BASE.assign(predicted_age=30.0)),
        ("no_minors", BASE[BASE.age >= 18]),
    ],
)
def test_report_says_what_could_not_be_computed(case, predictions):
    out = _run(predictions, MemoryDataset(NO_ATTRIBUTIONS), MemoryDataset(synthetic_landmarks(predictions.image_id)))
    report = html.unescape(out["audit_report"])
    assert "What could not be computed" in report, case
    if case == "one_group":
        assert "too few groups" in report  # status too_few_groups, in words
    if case == "no_minors":
        assert "no cases" in report and "no minors" in report  # statuses no_cases and no_minors, in words


def test_zero_rows_stop_the_run_before_the_report():
    """Since the input contract refuses an empty table (issue 14), no report is made of zero rows; the
    report's own words for it ("No faces to audit") are checked in tests/report/test_html.py."""
    from dex_bias.stats.contract import PredictionsContractError

    empty = BASE.iloc[:0][["image_id", "predicted_age", "split"]]
    with pytest.raises(PredictionsContractError, match="no rows to audit"):
        _run(empty, MemoryDataset(NO_ATTRIBUTIONS), MemoryDataset(synthetic_landmarks(empty.image_id)))

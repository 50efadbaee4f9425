"""The report on a CSV of only image_id,predicted_age, read and written through the `external`
conf environment's catalog (what `kedro run --pipelines=report --env external` uses), in-process."""

from __future__ import annotations

import pandas as pd
import pytest

from dex_bias.pipelines.report.pipeline import create_pipeline
from dex_bias.stats.contract import PredictionsContractError
from tests.browser import open_in_chromium
from tests.conftest import base_parameters, latest, project_catalog, run_in_process
from tests.pipelines.report.conftest import read_latest_csv
from tests.stats.conftest import synthetic_predictions

CSV = "data/01_raw/external_predictions.csv"


def audit_external(root, **params) -> None:
    """The report pipeline on ``root/CSV`` through the ``external`` env's catalog (outputs saved
    under ``root`` as a run saves them), fewer bootstrap draws (same code path); ``params``: more
    dotted keys."""
    run_in_process(
        create_pipeline(),
        parameters=base_parameters({"report.bootstrap.n_boot": 200, **params}),
        catalog=project_catalog(root, env="external"),
    )


def write_csv(root, frame: pd.DataFrame) -> None:
    (root / CSV).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / CSV, index=False)


@pytest.fixture(scope="module")
def external_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("external_audit")
    vendor = synthetic_predictions(900, seed=21, race_bias={3: 6.0})
    write_csv(project, vendor[["image_id", "predicted_age"]])
    audit_external(project)
    return project, vendor


def test_external_csv_is_audited_with_labels_from_ids(external_project):
    project, vendor = external_project
    metrics = read_latest_csv(project, "data/08_reporting/group_metrics.csv")
    overall = metrics[(metrics.grouping == "overall") & (metrics.band_scheme == "audit")].iloc[0]
    assert overall.n == len(vendor)
    assert overall.mae == pytest.approx((vendor.predicted_age - vendor.age).abs().mean())
    indian = metrics[(metrics.grouping == "race") & (metrics.group == "Indian")].iloc[0]
    assert indian.n == (vendor.race == 3).sum()
    tests = read_latest_csv(project, "data/08_reporting/significance_tests.csv")
    rest = tests[(tests.family == "group_vs_rest") & (tests.feature == "race") & (tests.outcome == "absolute_error")]
    assert rest.loc[rest.worse, "group"].tolist() == ["Indian"]
    assert (rest.loc[rest.worse, "p_corr"] < 0.05).all() and (rest.loc[rest.worse, "difference"] > 0).all()
    assert read_latest_csv(project, "data/08_reporting/paper_correlation_table.csv").empty
    assert read_latest_csv(project, "data/08_reporting/image_quality_metrics.csv").empty  # no landmarks here
    report = latest(project, "data/08_reporting/audit_report.html").read_text()
    assert "No region attributions in this run" in report
    assert "Indian faces have a mean absolute error" in report
    assert "Not measured: this run has no landmarks" in report
    assert "not bias" in report  # the normality table is labelled for what it tests
    assert 'src="http' not in report and 'href="http' not in report  # self-contained


@pytest.mark.browser
def test_external_report_renders_in_chromium(external_project, tmp_path):
    project, _ = external_project
    report = latest(project, "data/08_reporting/audit_report.html")
    screenshot = tmp_path / "external_audit_report.png"
    errors = open_in_chromium(report.as_uri(), screenshot)
    assert errors == []
    assert screenshot.stat().st_size > 10_000


def test_bad_csv_stops_with_rows_listed_or_is_quarantined(tmp_path):
    vendor = synthetic_predictions(120, seed=22)[["image_id", "predicted_age"]].astype({"predicted_age": object})
    vendor.loc[[3, 9], "predicted_age"] = ["n/a", -4.0]
    vendor.loc[5, "image_id"] = "passport_photo_0005.png"
    vendor = pd.concat([vendor, vendor.iloc[[7]]], ignore_index=True)  # a duplicated id
    write_csv(tmp_path, vendor)
    with pytest.raises(PredictionsContractError) as failed:
        audit_external(tmp_path)
    output = str(failed.value)
    assert CSV in output and "5 of 121 rows cannot be audited" in output
    for expected in (
        "non_numeric_prediction: 1 rows",
        "negative_prediction: 1 rows",
        "unparseable_id: 1 rows",
        "duplicate_id: 2 rows",
        "row 6 ('passport_photo_0005.png')",
        "report.input.allow_quarantine",
    ):
        assert expected in output, expected
    assert not (tmp_path / "data" / "08_reporting").exists()  # stopped before any output
    audit_external(tmp_path, **{"report.input.allow_quarantine": True})
    quarantine = read_latest_csv(tmp_path, "data/08_reporting/report_input_quarantine.csv")
    assert sorted(quarantine.row) == [4, 6, 8, 10, 121]
    metrics = read_latest_csv(tmp_path, "data/08_reporting/group_metrics.csv")
    assert metrics.loc[metrics.grouping == "overall", "n"].iloc[0] == 121 - 5

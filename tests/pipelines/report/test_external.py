"""`kedro run --pipelines=report --env external` on a CSV of only image_id,predicted_age."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.browser import open_in_chromium
from tests.conftest import run_kedro
from tests.pipelines.report.conftest import FAST, latest, read_latest_csv
from tests.stats.conftest import synthetic_predictions

CSV = "data/01_raw/external_predictions.csv"


@pytest.fixture(scope="module")
def external_project(project_factory):
    project = project_factory("external_audit")
    vendor = synthetic_predictions(900, seed=21, race_bias={3: 6.0})
    vendor[["image_id", "predicted_age"]].to_csv(project / CSV, index=False)
    run_kedro(project, "--pipelines=report", *FAST, env="external")
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
    assert "src=\"http" not in report and "href=\"http" not in report  # self-contained


def test_external_report_renders_in_chromium(external_project, tmp_path):
    project, _ = external_project
    report = latest(project, "data/08_reporting/audit_report.html")
    screenshot = tmp_path / "external_audit_report.png"
    errors = open_in_chromium(report.as_uri(), screenshot)
    assert errors == []
    assert screenshot.stat().st_size > 10_000


def test_bad_csv_stops_with_rows_listed_or_is_quarantined(project_factory):
    project = project_factory("external_bad")
    vendor = synthetic_predictions(120, seed=22)[["image_id", "predicted_age"]].astype({"predicted_age": object})
    vendor.loc[[3, 9], "predicted_age"] = ["n/a", -4.0]
    vendor.loc[5, "image_id"] = "passport_photo_0005.png"
    vendor = pd.concat([vendor, vendor.iloc[[7]]], ignore_index=True)  # a duplicated id
    vendor.to_csv(project / CSV, index=False)
    failed = run_kedro(project, "--pipelines=report", *FAST, env="external", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert CSV in output and "5 of 121 rows cannot be audited" in output
    for expected in ("non_numeric_prediction: 1 rows", "negative_prediction: 1 rows", "unparseable_id: 1 rows",
                     "duplicate_id: 2 rows", "row 6 ('passport_photo_0005.png')", "report.input.allow_quarantine"):
        assert expected in output, expected
    run_kedro(project, "--pipelines=report", *FAST, "--params", "report.input.allow_quarantine=true", env="external")
    quarantine = read_latest_csv(project, "data/08_reporting/report_input_quarantine.csv")
    assert sorted(quarantine.row) == [4, 6, 8, 10, 121]
    metrics = read_latest_csv(project, "data/08_reporting/group_metrics.csv")
    assert metrics.loc[metrics.grouping == "overall", "n"].iloc[0] == 121 - 5

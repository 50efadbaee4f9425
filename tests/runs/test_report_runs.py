"""A report run's outputs count only once it has finished; bad external CSVs stop it clearly.

In-process Kedro runs of a project copy on a vendor CSV (``--env external``): quick, no images.
"""

from __future__ import annotations

import pandas as pd
import pytest

from dex_bias.stats.contract import PredictionsContractError
from tests.runs.conftest import (
    CSV,
    QUICK_REPORT,
    manifest,
    notebook_catalog,
    pretend_running,
    session_run,
    set_aside,
    versions,
    write_vendor_csv,
)
from tests.stats.conftest import synthetic_predictions

REPORT_OUTPUTS = ("group_metrics.csv", "significance_tests.csv", "age_gate_metrics.csv", "audit_report.html")


@pytest.fixture(scope="module")
def vendor() -> pd.DataFrame:
    return synthetic_predictions(400, seed=31)[["image_id", "predicted_age"]]


@pytest.mark.slow  # two report runs in a Kedro session, then a notebook's IPython catalog
def test_a_failed_report_never_becomes_the_latest_and_a_notebook_reads_the_complete_one(
    project_factory, monkeypatch, vendor, runs_log
):
    project = project_factory("failed_report", QUICK_REPORT)
    write_vendor_csv(project, vendor)
    good = session_run(project, monkeypatch, ["report"], env="external")
    assert manifest(project, good)["status"] == "complete"
    good_report = (project / f"data/08_reporting/audit_report.html/{good}/audit_report.html").read_text()

    # The same audit failing in its last step (the HTML page), after most tables were saved. (A
    # broken parameter no longer gets that far: it stops the run before any node.)
    def broken_page(report):
        raise RuntimeError("the page could not be rendered")

    with monkeypatch.context() as patched:
        patched.setattr("dex_bias.pipelines.report.nodes.render_audit_report", broken_page)
        with pytest.raises(RuntimeError, match="could not be rendered"):
            session_run(project, monkeypatch, ["report"], env="external")
    failed = set_aside(project, "data/08_reporting/group_metrics.csv")
    assert len(failed) == 1, "the failed run had saved group_metrics before failing"
    failed = failed[0]
    for output in REPORT_OUTPUTS:
        assert versions(project, f"data/08_reporting/{output}") == [good], output
    assert f"Run {failed} did not finish (" in runs_log.text and "never read as the latest" in runs_log.text

    catalog = notebook_catalog(project, monkeypatch, env="external")
    assert catalog.load("audit_report") == good_report
    assert catalog.load("run_manifest")["run_id"] == good
    pd.testing.assert_frame_equal(
        catalog.load("group_metrics"),
        pd.read_csv(project / f"data/08_reporting/group_metrics.csv/{good}/group_metrics.csv"),
    )


@pytest.mark.slow  # a report run in a Kedro session, then a notebook's IPython catalog
def test_a_notebook_opened_while_a_run_is_writing_reads_the_finished_versions(project_factory, monkeypatch, vendor):
    import shutil
    import subprocess
    import sys

    project = project_factory("reading_during_a_run", QUICK_REPORT)
    write_vendor_csv(project, vendor)
    good = session_run(project, monkeypatch, ["report"], env="external")
    writing = "2099-01-01T00.00.00.000Z"
    metrics = "data/08_reporting/group_metrics.csv"
    (project / metrics / writing).mkdir()
    shutil.copy(project / metrics / good / "group_metrics.csv", project / metrics / writing / "group_metrics.csv")
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pretend_running(project, writing, {"group_metrics": metrics}, other_run)
        catalog = notebook_catalog(project, monkeypatch, env="external")
        assert catalog.get("group_metrics").resolve_load_version() == good
        assert versions(project, metrics)[-1] == writing  # still there: that run goes on
    finally:
        other_run.kill()
        other_run.wait()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty (no header, no rows)"),
        (b"image_id,predicted_age\n", "no rows to audit (a header ['image_id', 'predicted_age'] and no data rows)"),
    ],
)
def test_empty_csvs_stop_before_any_output_with_the_file_named(project_factory, monkeypatch, content, expected):
    project = project_factory("empty_csv", QUICK_REPORT)
    (project / CSV).write_bytes(content)
    with pytest.raises(Exception) as error:
        session_run(project, monkeypatch, ["report"], env="external")
    message = str(error.value)
    assert expected in message and str(project / CSV) in message
    assert "KeyError" not in repr(error.value) and "No columns to parse" not in message
    written = [p for p in (project / "data" / "08_reporting").rglob("*") if p.is_file()]
    assert written == []


@pytest.mark.slow  # two report runs in a Kedro session
def test_implausible_estimates_are_refused_or_set_aside_by_row(project_factory, monkeypatch, vendor):
    project = project_factory("implausible", QUICK_REPORT)
    broken = vendor.astype({"predicted_age": object})
    broken.loc[[4, 9, 14, 19], "predicted_age"] = [1e9, 1e6, -0.0, ""]
    write_vendor_csv(project, broken)
    with pytest.raises(PredictionsContractError) as error:
        session_run(project, monkeypatch, ["report"], env="external")
    message = str(error.value)
    assert "3 of 400 rows cannot be audited" in message
    assert "row 5 (" in message and "1000000000.0 is outside the plausible range 0-120 years" in message
    assert "row 10 (" in message and "1000000.0 is outside" in message
    assert "row 20 (" in message and "predicted_age is an empty cell" in message
    run = session_run(
        project, monkeypatch, ["report"], env="external", params={"report": {"input": {"allow_quarantine": True}}}
    )
    quarantine = pd.read_csv(
        project / f"data/08_reporting/report_input_quarantine.csv/{run}/report_input_quarantine.csv"
    )
    assert quarantine["row"].tolist() == [5, 10, 20]
    metrics = pd.read_csv(project / f"data/08_reporting/group_metrics.csv/{run}/group_metrics.csv")
    overall = metrics[(metrics.grouping == "overall") & (metrics.band_scheme == "audit")].iloc[0]
    assert overall.n == 397 and overall.mae < 20  # not thousands of years
    kept = vendor.drop(index=[4, 9, 19])
    kept.loc[14, "predicted_age"] = 0.0
    # The estimate written -0 is an age of 0 in the audit.
    assert overall.mae == pytest.approx(
        (kept.predicted_age - kept.image_id.str.split("_").str[0].astype(int)).abs().mean()
    )


@pytest.mark.slow  # a report run in a Kedro session
def test_a_single_group_audit_finishes_or_leaves_the_last_complete_report(project_factory, monkeypatch):
    project = project_factory("single_group", QUICK_REPORT)
    one_group = synthetic_predictions(300, seed=32)
    one_group[["race", "gender"]] = 0  # every face: a White man
    write_vendor_csv(project, one_group)
    try:
        run = session_run(project, monkeypatch, ["report"], env="external")
    except Exception:  # noqa: BLE001 - degenerate statistics are issue 11's; no partial output may count
        assert all(versions(project, f"data/08_reporting/{output}") == [] for output in REPORT_OUTPUTS)
    else:
        assert manifest(project, run)["status"] == "complete"
        assert versions(project, "data/08_reporting/audit_report.html") == [run]


@pytest.mark.slow  # report runs in a Kedro session
def test_a_vendor_csv_is_recorded_by_its_content_and_attributions_of_other_predictions_are_left_out(
    project_factory, monkeypatch, vendor, runs_log
):
    """The external env reads `region_attributions` from the explain pipeline's folder: those explain
    the model's own predictions, not the vendor's, so they are left out (the report says so)."""
    import hashlib

    project = project_factory("vendor_and_attributions", QUICK_REPORT)
    write_vendor_csv(project, vendor)
    # An explain run's attributions of this project's own predictions, as a complete run leaves them.
    from dex_bias.runs.ledger import RunLedger

    stamp = "2026-01-01T00.00.00.000Z"
    folder = project / "data/07_model_output/region_attributions.parquet" / stamp
    folder.mkdir(parents=True)
    pd.DataFrame({"image_id": vendor.image_id[:3], "method": "regions", "region": "nose", "weight": 0.1}).to_parquet(
        folder / "region_attributions.parquet"
    )
    ledger = RunLedger(project)
    ledger.start(stamp, {"command": {}, "outputs": {}})
    ledger.finish(
        stamp,
        {
            "outputs": {
                "region_attributions": {
                    "filepath": "data/07_model_output/region_attributions.parquet",
                    "version": stamp,
                    "inputs": {
                        "predictions": {"filepath": "data/07_model_output/predictions.parquet", "version": stamp}
                    },
                }
            }
        },
    )
    run = session_run(project, monkeypatch, ["report"], env="external")
    record = manifest(project, run)
    digest = hashlib.sha256((project / CSV).read_bytes()).hexdigest()
    assert record["inputs"]["predictions"]["version"] == f"sha256:{digest}"
    assert "region_attributions" in record["decisions"]["left_out"]
    assert "this run reads predictions from data/01_raw/external_predictions.csv" in runs_log.text
    report = (project / f"data/08_reporting/audit_report.html/{run}/audit_report.html").read_text()
    assert "No region attributions in this run" in report
    assert record["outputs"]["group_metrics"]["inputs"]["predictions"]["version"] == f"sha256:{digest}"

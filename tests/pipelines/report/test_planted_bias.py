"""The planted-bias check: the report finds the demo's planted group, and nothing without it."""

from __future__ import annotations

import pytest

from dex_bias.parameters import project_parameters
from dex_bias.utkface import RACE_NAMES
from tests.browser import open_in_chromium
from tests.conftest import TEST_DEMO_PARAMS, latest, run_kedro
from tests.pipelines.report.conftest import FAST, read_latest_csv

pytestmark = pytest.mark.slow


def _group_vs_rest(project, outcome=None):
    tests = read_latest_csv(project, "data/08_reporting/significance_tests.csv")
    rows = tests[(tests.family == "group_vs_rest") & (tests.status == "ok")]
    return rows if outcome is None else rows[rows.outcome == outcome]


def test_demo_report_flags_the_planted_group(demo_run, tmp_path):
    planted = RACE_NAMES[project_parameters(demo_run / "conf").ingest.demo.planted_race]
    rows = _group_vs_rest(demo_run, "absolute_error")
    race = rows[rows.feature == "race"].set_index("group")
    assert race.loc[planted, "p_corr"] < 0.01 and race.loc[planted, "difference"] > 0, race
    assert race.loc[planted, "difference_ci_low"] > 0
    assert race.loc[race.worse].index.tolist() == [planted]
    report = latest(demo_run, "data/08_reporting/audit_report.html")
    assert f"{planted} faces have a mean absolute error" in report.read_text()
    screenshot = tmp_path / "demo_audit_report.png"
    assert open_in_chromium(report.as_uri(), screenshot) == []
    assert screenshot.stat().st_size > 10_000


def test_demo_without_planted_bias_flags_nothing(project_factory):
    project = project_factory("demo_no_bias", {**TEST_DEMO_PARAMS, "ingest.demo.planted_strength": 0})
    run_kedro(project, "--pipelines=ingest,align,train,infer,report", *FAST)
    rows = _group_vs_rest(project)
    tested = rows[(rows.feature == "race") & (rows.outcome == "absolute_error")]
    assert len(tested) == len(RACE_NAMES)  # every race was tested
    flagged = rows[rows.p_corr < 0.05]  # either outcome
    assert flagged.empty, flagged[["feature", "group", "difference", "p_unc", "p_corr"]]

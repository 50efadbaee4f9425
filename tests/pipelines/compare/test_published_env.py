"""`kedro run --env published` on a small demo: both published models audited side by side, end to end."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from dex_bias.models.registry import published_models
from tests.browser import open_in_chromium
from tests.conftest import REPO_ROOT, latest, run_kedro

YU4U_FILE = REPO_ROOT / published_models()["yu4u_wrn_16_8_v05"].file
SMALL = (
    "--params",
    "ingest.demo.count=160,explain.max_images=3,explain.lime.num_samples=40,"
    "explain.quality.sample_size=1,report.bootstrap.n_boot=100",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not YU4U_FILE.exists(),
        reason=f"yu4u's weights are not here ({YU4U_FILE}); get them with "
        "`python -m dex_bias.models.fetch yu4u_wrn_16_8_v05` (CI does)",
    ),
]


@pytest.fixture(scope="module")
def published_run(project_factory):
    project = project_factory("published")
    target = project / published_models()["yu4u_wrn_16_8_v05"].file
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(YU4U_FILE, target)
    run_kedro(project, *SMALL, env="published")
    return project


def test_both_published_models_are_audited_on_the_same_faces(published_run):
    wrn = pd.read_parquet(latest(published_run, "data/07_model_output/yu4u_wrn_16_8_v05/predictions.parquet"))
    dlib_age = pd.read_parquet(latest(published_run, "data/07_model_output/dlib_age_v1/predictions.parquet"))
    assert len(wrn) == len(dlib_age) > 140  # every split: neither model was trained here
    assert {f"p_age_{a:03d}" for a in range(101)} <= set(wrn.columns)
    assert {f"p_age_{a:03d}" for a in range(81)} <= set(dlib_age.columns) and "p_age_081" not in dlib_age.columns
    assert wrn["prob_female"].notna().all() and dlib_age["prob_female"].notna().all()
    assert set(wrn["model_version"]) == {published_models()["yu4u_wrn_16_8_v05"].sha256[:12]}
    for model in ("yu4u_wrn_16_8_v05", "dlib_age_v1"):
        assert latest(published_run, f"data/08_reporting/{model}/audit_report.html").exists()
        attributions = pd.read_parquet(
            latest(published_run, f"data/07_model_output/{model}/region_attributions.parquet")
        )
        assert attributions["image_id"].nunique() == 3
    # Nothing of the model trained here in this env.
    assert not any((published_run / "data/06_models/age_model.keras").glob("*"))
    board = pd.read_csv(latest(published_run, "data/08_reporting/comparison/model_leaderboard.csv"))
    assert set(board["model"]) == {"yu4u_wrn_16_8_v05", "dlib_age_v1"} and (board["n"] == len(wrn)).all()


def test_the_comparison_report_renders_in_chromium_without_errors(published_run, tmp_path):
    report = latest(published_run, "data/08_reporting/comparison/model_comparison_report.html")
    text = report.read_text()
    assert "Most accurate overall" in text and "Paired tests" in text and "Where the models look" in text
    screenshot = tmp_path / "model_comparison_report.png"
    assert open_in_chromium(report.as_uri(), screenshot) == []
    assert screenshot.stat().st_size > 50_000


def test_a_missing_weights_file_stops_the_run_before_any_node_with_the_fetch_command(project_factory):
    project = project_factory("published_missing")
    done = run_kedro(project, "--pipelines=yu4u_wrn_16_8_v05", env="published", check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "python -m dex_bias.models.fetch yu4u_wrn_16_8_v05" in output and "Running node" not in output

"""Runs killed (SIGKILL: no hook runs) or interrupted (Ctrl-C) never change what later runs read.

End to end, as a user meets it: `kedro run` subprocesses of a small demo, killed at three points
of the full run, then a notebook, `kedro run --pipelines=report`, Kedro-Viz previews and the next full run;
and an ingest + align interrupted during align, then `kedro run --pipelines=train,infer`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dex_bias.runs.ledger import MANIFEST, RUNS_FOLDER
from tests.conftest import run_kedro
from tests.runs.conftest import manifest, notebook_catalog, set_aside, versions

pytestmark = pytest.mark.slow

#: A demo small enough for several full runs in a test (each about 40 s on 2 cores).
TINY_DEMO = {
    "ingest.demo.count": 120,
    "train.epochs": 2,
    "explain.max_images": 6,
    "explain.quickshift.sample_size": 2,
    "explain.quality.sample_size": 2,
    "explain.lime.num_samples": 200,
    "report.bootstrap.n_boot": 100,
    "correct.evaluation.n_boot": 100,
}
FACES, LANDMARKS = "data/02_intermediate/faces.parquet", "data/03_primary/landmarks.parquet"
PREDICTIONS, ATTRIBUTIONS = (
    "data/07_model_output/predictions.parquet",
    "data/07_model_output/region_attributions.parquet",
)
GROUP_METRICS = "data/08_reporting/group_metrics.csv"
#: Where each killed run is stopped: once it has saved this dataset, its next node is running.
KILL_POINTS = {
    "align_faces (after ingest saved faces)": FACES,
    "predict_ages (after train saved the model)": "data/06_models/age_model.keras",
    "the report's tests (after group_metrics)": GROUP_METRICS,
}


def _environ() -> dict[str, str]:
    return dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", COLUMNS="200")


def _stop_when_saved(
    project: Path, args: list[str], relative: str, signal_number: int, timeout: float = 600
) -> tuple[str, str]:
    """Start `kedro run *args`; once it has saved a new version of ``relative``, send the signal
    to its process group. Returns (the run's id, its output)."""
    before = set(versions(project, relative))
    log = project / f"stopped_{time.monotonic_ns()}.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "run", *args],
            cwd=project,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_environ(),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while not (new := set(versions(project, relative)) - before):
                assert process.poll() is None, f"the run ended before saving {relative}:\n{log.read_text()[-4000:]}"
                assert time.monotonic() < deadline, f"no new version of {relative} after {timeout} s"
                time.sleep(0.05)
            os.killpg(process.pid, signal_number)
        finally:
            if process.poll() is None and signal_number != signal.SIGINT:
                process.wait(timeout=60)
        process.wait(timeout=120)
    return new.pop(), log.read_text()


def _newest_complete_run(project: Path) -> str:
    return sorted(p.parent.name for p in (project / RUNS_FOLDER).glob(f"*/{MANIFEST}"))[-1]


def _flat(text: str) -> str:
    """A log without Rich's wrapping and source-location column."""
    return " ".join(re.sub(r"\s+[\w.]+\.py:\d+", " ", text).split())


@pytest.fixture(scope="module")
def demo(project_factory) -> tuple[Path, str]:
    project = project_factory("killed_runs", TINY_DEMO)
    run_kedro(project)
    return project, _newest_complete_run(project)


def test_a_demo_run_killed_at_three_nodes_never_changes_what_the_report_reads(demo, monkeypatch):
    from tests.viz.kedro_viz_data import VizGraph, build_viz

    project, first = demo
    assert manifest(project, first)["outputs"]["predictions"]["version"] == first
    for point, relative in KILL_POINTS.items():
        # A different bootstrap seed: what the killed run wrote differs from the complete run's.
        killed, output = _stop_when_saved(project, ["--params", "report.bootstrap.seed=7"], relative, signal.SIGKILL)
        assert not (project / RUNS_FOLDER / killed / MANIFEST).exists(), f"{point}: the run finished before the kill"
        assert killed in versions(project, relative), point  # looks like a version until a session sweeps it

        if relative == FACES:  # a notebook opened now reads the complete run's faces
            catalog = notebook_catalog(project, monkeypatch)
            assert catalog.get("faces").resolve_load_version() == first
            assert catalog.load("run_manifest")["run_id"] == first
            assert killed in set_aside(project, FACES)

        if relative == GROUP_METRICS:  # Kedro-Viz (it runs no hooks) previews the complete run's table
            graph = VizGraph(build_viz(project, include_previews=True))
            preview = graph.node_metadata(graph.datasets["group_metrics"]["id"])["preview"]
            complete = pd.read_csv(project / GROUP_METRICS / first / "group_metrics.csv").head(len(preview["data"]))
            assert preview["columns"] == list(complete.columns)
            as_shown = [[None if pd.isna(cell) else cell for cell in row] for row in complete.values.tolist()]
            assert preview["data"] == as_shown
            try:  # so the preview could have shown the killed run's table, had it been read
                partial = pd.read_csv(project / GROUP_METRICS / ".incomplete" / killed / "group_metrics.csv")
            except (pd.errors.EmptyDataError, pd.errors.ParserError):
                partial = None  # killed while the file was being written: cut off
            assert partial is None or not complete.equals(partial.head(len(complete)))

        report = run_kedro(project, "--pipelines=report")
        assert f"Run {killed} did not finish" in _flat(report.stdout + report.stderr) or relative in (
            FACES,
            GROUP_METRICS,
        )
        read = manifest(project, _newest_complete_run(project))["inputs"]
        assert (read["predictions"]["version"], read["region_attributions"]["version"]) == (first, first), point
        assert killed not in versions(project, relative) and killed in set_aside(project, relative), point
        for dataset in (FACES, LANDMARKS, PREDICTIONS, ATTRIBUTIONS):
            assert killed not in versions(project, dataset), (point, dataset)

    done = run_kedro(project)
    final = _newest_complete_run(project)
    assert "Pipeline execution completed successfully" in _flat(done.stdout + done.stderr)
    assert manifest(project, final)["outputs"]["audit_report"]["version"] == final
    assert versions(project, "data/08_reporting/audit_report.html")[-1] == final


def test_an_interrupted_ingest_and_align_then_train_and_infer_read_a_consistent_set(demo):
    project, _ = demo
    other = project / "data" / "01_raw" / "other_faces"
    other.mkdir(exist_ok=True)
    for image in sorted((project / "data" / "01_raw" / "demo_faces").glob("*.jpg"))[::2]:
        shutil.copy(image, other / image.name)
    complete_faces = versions(project, FACES)[-1]
    # Ctrl-C during align (what the issue did): the hooks cannot run, the exit handler can.
    interrupted, output = _stop_when_saved(
        project,
        ["--pipelines=ingest,align", "--params", "ingest.image_dir=data/01_raw/other_faces"],
        FACES,
        signal.SIGINT,
    )
    assert f"Run {interrupted} did not finish (interrupted)" in _flat(output)
    assert interrupted in set_aside(project, FACES) and versions(project, FACES)[-1] == complete_faces

    done = run_kedro(project, "--pipelines=train,infer")
    record = manifest(project, _newest_complete_run(project))
    faces, landmarks = record["inputs"]["faces"]["version"], record["inputs"]["landmarks"]["version"]
    assert faces == complete_faces
    assert manifest(project, landmarks)["outputs"]["landmarks"]["inputs"]["faces"]["version"] == faces
    trained_on = record["outputs"]["predictions"]["inputs"]
    assert trained_on["faces"]["version"] == faces and trained_on["age_model"]["version"] == record["run_id"]
    flat = _flat(done.stdout + done.stderr)
    assert "2 have landmarks" not in flat and "Training compact on 1 faces" not in flat

    # The same folder ingested to the end (no align): train + infer now refuse, naming both versions.
    newer = run_kedro(project, "--pipelines=ingest", "--params", "ingest.image_dir=data/01_raw/other_faces")
    newer_faces = versions(project, FACES)[-1]
    refused = run_kedro(project, "--pipelines=train,infer", check=False)
    message = _flat(refused.stdout + refused.stderr)
    assert refused.returncode != 0 and newer.returncode == 0
    assert f"landmarks {landmarks} was made from faces {faces}, not from faces {newer_faces}" in message
    assert "kedro run --pipelines=align,train,infer" in message
    assert json.loads((project / RUNS_FOLDER / newer_faces / MANIFEST).read_text())["status"] == "complete"

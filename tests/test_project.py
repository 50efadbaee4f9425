"""Project-level behaviour: pipeline registry, the upstream check of single-pipeline runs, and the
suite's one end-to-end `kedro run` of the demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dex_bias.runs.ledger import MANIFEST, RUNS_FOLDER
from tests.conftest import run_kedro

EXPECTED_PIPELINES = {"ingest", "align", "train", "infer", "explain", "report", "correct"}


def test_every_pipeline_is_registered_and_default_is_their_union():
    from kedro.framework.project import configure_project, pipelines

    configure_project("dex_bias")
    registered = dict(pipelines)
    assert EXPECTED_PIPELINES <= set(registered)
    default_nodes = set(registered["__default__"].nodes)
    for name in EXPECTED_PIPELINES:
        assert set(registered[name].nodes) <= default_nodes, name


def test_a_pipeline_run_alone_before_its_upstream_stops_before_any_node(project_factory):
    project: Path = project_factory("never_ingested")
    done = run_kedro(project, "--pipelines=align", check=False)
    output = " ".join((done.stdout + done.stderr).split())  # rich wraps long log lines
    assert done.returncode != 0
    assert "'faces' has never been made" in output
    assert "`kedro run --pipelines=ingest`" in output
    # No node ran: nothing was written in any data layer.
    written = [p for p in (project / "data").rglob("*") if p.is_file()]
    assert written == []


@pytest.mark.slow
def test_kedro_run_of_the_demo_finishes_and_saves_each_output_as_one_version_of_the_run(demo_run):
    """The end-to-end ``kedro run`` of the demo (the ``demo_run`` fixture, which the other slow tests
    of the whole flow then read): it finishes, and every output, from faces to the corrected
    estimates, is saved under the run's own stamp."""
    run_id = sorted(p.parent.name for p in (demo_run / RUNS_FOLDER).glob(f"*/{MANIFEST}"))[0]  # the first run
    record = json.loads((demo_run / RUNS_FOLDER / run_id / MANIFEST).read_text())
    assert record["status"] == "complete"
    outputs = record["outputs"]
    assert {
        "faces",
        "landmarks",
        "age_model",
        "predictions",
        "region_attributions",
        "audit_report",
        "correction_model",
        "corrected_predictions",
    } <= set(outputs)
    assert outputs["audit_report"]["version"] == run_id
    for name, output in outputs.items():
        if output["version"] == run_id:  # versioned: a folder named by the run's stamp
            assert (demo_run / output["filepath"] / run_id).is_dir(), name

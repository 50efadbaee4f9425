"""Project-level behaviour: pipeline registry and the upstream check of single-pipeline runs."""

from __future__ import annotations

from pathlib import Path

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

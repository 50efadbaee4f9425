"""Helpers for the run-ledger tests: Kedro runs of a project copy, in this process or as `kedro run`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dex_bias.runs.ledger import INCOMPLETE, RUNS_FOLDER

CSV = "data/01_raw/external_predictions.csv"
#: A quick report: coarse bootstrap intervals, the same code path.
QUICK_REPORT = {"report.bootstrap.n_boot": 100}


def session_run(project: Path, monkeypatch, pipelines: list[str], *, env: str | None = None,
                params: dict | None = None, load_versions: dict | None = None) -> str:
    """``kedro run`` in this process (as a notebook's ``session.run`` would); returns the run id."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    monkeypatch.chdir(project)  # relative image folders resolve against the project, as under `kedro run`
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        _reattach_logs()
        run_id = session.store["session_id"]
        session.run(pipeline_names=pipelines, load_versions=load_versions)
    return run_id


def catalog_of(project: Path, monkeypatch, env: str | None = None):
    """The catalog a notebook gets from ``%load_ext kedro.ipython`` (``session.load_context().catalog``)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    monkeypatch.chdir(project)
    bootstrap_project(project)
    session = KedroSession.create(project_path=project, env=env)
    _reattach_logs()
    return session.load_context().catalog


def versions(project: Path, relative: str) -> list[str]:
    """The version folders of a dataset (what Kedro can read), oldest first."""
    folder = project / relative
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def set_aside(project: Path, relative: str) -> list[str]:
    folder = project / relative / INCOMPLETE
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def manifest(project: Path, run_id: str) -> dict:
    return json.loads((project / RUNS_FOLDER / run_id / "run_manifest.json").read_text())


def write_vendor_csv(project: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(project / CSV, index=False)


_LOGS: list["RunsLog"] = []


def _reattach_logs() -> None:
    """Kedro's logging setup (``dictConfig`` on the package's logger) empties the handlers of
    ``dex_bias.*`` loggers, and pytest's caplog sits on the root: attach ours again."""
    import logging

    logger = logging.getLogger("dex_bias.runs")
    for log in _LOGS:
        if log.handler not in logger.handlers:
            logger.addHandler(log.handler)


class RunsLog:
    """Messages of the ``dex_bias.runs`` logger during a test."""

    def __init__(self) -> None:
        import logging

        self.records: list[logging.LogRecord] = []
        self.handler = logging.Handler(level=logging.DEBUG)
        self.handler.emit = self.records.append  # type: ignore[method-assign]

    @property
    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@pytest.fixture
def runs_log():
    import logging

    log = RunsLog()
    _LOGS.append(log)
    _reattach_logs()
    yield log
    _LOGS.remove(log)
    logging.getLogger("dex_bias.runs").removeHandler(log.handler)

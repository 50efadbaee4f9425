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


def session_run(
    project: Path,
    monkeypatch,
    pipelines: list[str],
    *,
    env: str | None = None,
    params: dict | None = None,
    load_versions: dict | None = None,
) -> str:
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


def notebook_catalog(project: Path, monkeypatch, env: str | None = None):
    """The ``catalog`` a notebook gets: ``%load_ext kedro.ipython`` in an IPython shell started in
    the project (then ``%reload_kedro <project> --env <env>``, as a notebook of another env does)."""
    import sys

    from IPython.core.interactiveshell import InteractiveShell

    # %reload_kedro drops the project's modules from sys.modules and imports them afresh; the
    # tests that run after this one keep the classes they imported (their exceptions, say).
    ours = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "dex_bias"}
    monkeypatch.chdir(project)
    shell = InteractiveShell.instance()
    try:
        if "kedro.ipython" in shell.extension_manager.loaded:
            shell.run_line_magic("reload_kedro", str(project))
        else:
            shell.run_line_magic("load_ext", "kedro.ipython")
        if env:
            shell.run_line_magic("reload_kedro", f"{project} --env={env}")
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "dex_bias"]:
            if name not in ours:
                del sys.modules[name]
        sys.modules.update(ours)
    _reattach_logs()
    return shell.user_ns["catalog"]


def versions(project: Path, relative: str) -> list[str]:
    """The version folders of a dataset (what Kedro can read), oldest first."""
    folder = project / relative
    return (
        sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    )


def set_aside(project: Path, relative: str) -> list[str]:
    folder = project / relative / INCOMPLETE
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def manifest(project: Path, run_id: str) -> dict:
    return json.loads((project / RUNS_FOLDER / run_id / "run_manifest.json").read_text())


def write_vendor_csv(project: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(project / CSV, index=False)


_LOGS: list[RunsLog] = []


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


def pretend_running(project: Path, run_id: str, outputs: dict[str, str], process) -> None:
    """Record run ``run_id`` as started by ``process`` (a live child) and writing ``outputs``
    (``{dataset: filepath relative to the project}``), as a `kedro run` in another terminal would."""
    from dex_bias.runs.ledger import STARTED, RunLedger, process_identity

    ledger = RunLedger(project)
    ledger.start(
        run_id,
        {
            "command": {"pipeline_names": ["__default__"]},
            "outputs": {
                name: {"filepath": path, "version_folder": f"{path}/{run_id}"} for name, path in outputs.items()
            },
        },
    )
    started = ledger.folder(run_id) / STARTED
    started.write_text(json.dumps({**json.loads(started.read_text()), "process": process_identity(process.pid)}))

"""The run ledger alone (no Kedro): start and manifest records, setting aside, sweeping."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dex_bias.runs.ledger import (
    INCOMPLETE,
    MANIFEST,
    STARTED,
    RunLedger,
    process_identity,
    process_state,
    write_json_once,
)

RUN = "2026-01-02T03.04.05.678Z"


def _write_version(project, relative: str, run_id: str, text: str = "data") -> str:
    folder = project / relative / run_id
    folder.mkdir(parents=True)
    (folder / relative.rsplit("/", 1)[-1]).write_text(text)
    return f"{relative}/{run_id}"


def _start(ledger: RunLedger, project, run_id: str, datasets: dict[str, str]) -> None:
    ledger.start(
        run_id,
        {
            "command": {"pipeline_names": ["ingest"]},
            "outputs": {
                name: {"filepath": path, "version_folder": f"{path}/{run_id}"} for name, path in datasets.items()
            },
        },
    )


def test_a_record_is_written_whole_and_once(tmp_path):
    path = tmp_path / "a" / "record.json"
    write_json_once(path, {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert not [p for p in path.parent.iterdir() if p.name != "record.json"]  # no temporary left
    with pytest.raises(FileExistsError):
        write_json_once(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 1}


def test_this_process_is_alive_and_a_finished_one_is_gone():
    assert process_state(process_identity()) == "alive"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    assert process_state(identity) == "gone"
    assert process_state({**process_identity(), "start_ticks": "1"}) == "gone"  # a pid reused by another process
    assert process_state({**process_identity(), "host": "elsewhere"}) == "unknown"


def test_a_finished_run_counts_and_keeps_its_files(tmp_path):
    ledger = RunLedger(tmp_path)
    folder = _write_version(tmp_path, "data/02_intermediate/faces.parquet", RUN)
    _start(ledger, tmp_path, RUN, {"faces": "data/02_intermediate/faces.parquet"})
    assert ledger.manifest(RUN) is None
    ledger.finish(RUN, {"outputs": {}})
    assert ledger.manifest(RUN)["status"] == "complete"
    assert ledger.sweep() == [] and (tmp_path / folder).is_dir()


def test_a_failed_run_has_what_it_wrote_set_aside_out_of_the_versions_glob(tmp_path):
    import glob

    ledger = RunLedger(tmp_path)
    older = _write_version(tmp_path, "data/02_intermediate/faces.parquet", "2025-01-01T00.00.00.000Z")
    _write_version(tmp_path, "data/02_intermediate/faces.parquet", RUN)
    _start(
        ledger,
        tmp_path,
        RUN,
        {"faces": "data/02_intermediate/faces.parquet", "landmarks": "data/03_primary/landmarks.parquet"},
    )  # never written
    outcome = ledger.fail(RUN, {"reason": "the run failed: ValueError: x"})
    assert outcome.datasets == ["faces"]
    assert outcome.moved[0][2] == f"data/02_intermediate/faces.parquet/{INCOMPLETE}/{RUN}"
    assert (tmp_path / outcome.moved[0][2] / "faces.parquet").is_file()  # kept, beside the versions
    # What Kedro globs for the latest version (Python's glob and fsspec's, which sees dot names):
    import fsspec

    pattern = str(tmp_path / "data/02_intermediate/faces.parquet/*/faces.parquet")
    for found in (glob.glob(pattern), fsspec.filesystem("file").glob(pattern)):
        assert [os.path.relpath(p, tmp_path) for p in found] == [f"{older}/faces.parquet"]
    assert not ledger.folder(RUN).exists() and (ledger.root / INCOMPLETE / RUN / STARTED).is_file()
    assert ledger.set_aside_version("data/02_intermediate/faces.parquet", RUN) is not None
    assert ledger.fail(RUN, {"reason": "again"}).moved == []  # done already: nothing to repeat


def test_a_sweep_sets_aside_runs_whose_process_is_gone_and_leaves_running_ones(tmp_path):
    ledger = RunLedger(tmp_path)
    live, dead, mine = RUN, "2026-01-02T03.04.06.000Z", "2026-01-02T03.04.07.000Z"
    for run_id in (live, dead, mine):
        _write_version(tmp_path, "data/03_primary/landmarks.parquet", run_id)
        _start(ledger, tmp_path, run_id, {"landmarks": "data/03_primary/landmarks.parquet"})
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = process_identity(child.pid)
    child.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for run_id, who in ((live, process_identity(sleeper.pid)), (dead, identity)):
            started = ledger.folder(run_id) / STARTED
            record = json.loads(started.read_text())
            started.write_text(json.dumps({**record, "process": who}))
        assert {r.run_id: r.state for r in ledger.unfinished(active_here={mine})} == {
            live: "alive",
            dead: "gone",
            mine: "alive",
        }
        assert [o["run_id"] for o in ledger.running_outputs(active_here={mine})] == [live, mine]
        swept = ledger.sweep(active_here={mine})
        assert [outcome.run_id for outcome in swept] == [dead]
        versions = sorted(p.name for p in (tmp_path / "data/03_primary/landmarks.parquet").iterdir())
        assert versions == [INCOMPLETE, live, mine]
        # A run of this process that is not running any more (a notebook's, stopped with Ctrl-C):
        assert [outcome.run_id for outcome in ledger.sweep()] == [mine]
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [outcome.run_id for outcome in ledger.sweep()] == [live]


def test_a_run_without_a_start_record_wrote_nothing_and_is_cleared_once_old(tmp_path):
    ledger = RunLedger(tmp_path)
    folder = ledger.folder(RUN)
    folder.mkdir(parents=True)
    (folder / f".{STARTED}.123.tmp").write_text("{cut off")
    assert ledger.unfinished() == []  # may be a run writing its start record right now
    os.utime(folder, (0, 0))
    assert [run.state for run in ledger.unfinished()] == ["gone"]
    assert ledger.sweep()[0].moved == [] and not folder.exists()


def test_a_manifest_cut_off_by_a_kill_does_not_count(tmp_path):
    ledger = RunLedger(tmp_path)
    _start(ledger, tmp_path, RUN, {})
    (ledger.folder(RUN) / MANIFEST).write_text('{"status": "compl')
    assert ledger.manifest(RUN) is None

"""The fan-out engine: results in task order on every engine, resumption, progress, and the errors a
user meets (no scheduler at the address, a task that keeps failing, Ctrl-C)."""

from __future__ import annotations

import logging
import socket
import time

import pandas as pd
import pytest

from dex_bias.fanout import ChunkStore, FanOutError, Task, run_tasks
from dex_bias.fanout.store import concat_tables
from tests.fanout.conftest import fan_out
from tests.fanout.workload import squares

QUIET = {"progress": False, "dashboard_address": None}


def tasks_for(count: int, per_task: int = 3, **kwargs) -> list[Task]:
    ids = [f"img_{k:03d}.jpg" for k in range(count)]
    tasks = []
    for start in range(0, count, per_task):
        part = ids[start : start + per_task]
        tasks.append(
            Task(
                f"chunk{start:03d}",
                tuple(part),
                squares,
                (part, [float(k) for k in range(start, start + len(part))]),
                dict(kwargs),
            )
        )
    return tasks


@pytest.mark.slow  # starts a LocalCluster
def test_a_local_cluster_gives_the_results_of_this_process_in_task_order():
    serial = run_tasks("squares", tasks_for(20), fan_out(synchronous=True, **QUIET))
    fanned = run_tasks("squares", tasks_for(20, seconds=0.05), fan_out(workers=2, **QUIET))
    table = concat_tables(fanned, "squares")
    pd.testing.assert_frame_equal(table, concat_tables(serial, "squares"))
    assert table["image_id"].tolist() == [f"img_{k:03d}.jpg" for k in range(20)]
    assert concat_tables(fanned, "workers")["pid"].nunique() == 2  # both workers took tasks


def test_no_scheduler_at_the_address_is_one_clear_error_within_seconds():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    started = time.perf_counter()
    with pytest.raises(FanOutError) as raised:
        run_tasks("squares", tasks_for(3), fan_out(address=address, connect_timeout=3, **QUIET))
    assert time.perf_counter() - started < 15
    message = str(raised.value)
    assert address in message and "dask.address" in message and "dask scheduler" in message
    assert "not done" not in message  # nothing had started: no resume advice, just the fix


@pytest.mark.parametrize(
    "engine", [{"synchronous": True}, pytest.param({"workers": 2, "retries": 1}, marks=pytest.mark.slow)]
)
def test_a_task_that_keeps_failing_stops_the_stage_naming_the_images_not_done(tmp_path, engine):
    stage = ChunkStore(tmp_path).stage("squares", {"v": 1})
    with pytest.raises(FanOutError) as raised:
        run_tasks("squares", tasks_for(12, fail_on="img_007.jpg"), fan_out(**engine, **QUIET), store=stage)
    message = str(raised.value)
    assert "ValueError: cannot square img_007.jpg" in message
    assert "img_006.jpg" in message  # the failed chunk's first image is named
    listing = next(stage.folder.glob("unfinished-*.txt")).read_text().split()
    assert "img_007.jpg" in listing and "img_000.jpg" not in listing
    assert str(stage.folder) in message and "only the missing chunks are computed" in message
    # What finished before the failure is kept, so the rerun has less to do.
    assert "chunk000" in stage.done() and "chunk006" not in stage.done()


def test_a_stage_stopped_midway_resumes_with_only_the_missing_chunks(tmp_path, monkeypatch):
    calls = []

    def counting(ids, values, **kwargs):
        calls.append(tuple(ids))
        if len(calls) == 3 and kwargs.pop("interrupt", False):
            raise KeyboardInterrupt
        kwargs.pop("interrupt", None)
        return squares(ids, values, **kwargs)

    def tasks(interrupt):
        return [Task(t.key, t.items, counting, t.args, {"interrupt": interrupt}) for t in tasks_for(15)]

    stage = ChunkStore(tmp_path).stage("squares", {"v": 1})
    with pytest.raises(KeyboardInterrupt):
        run_tasks("squares", tasks(True), fan_out(synchronous=True, **QUIET), store=stage)
    assert stage.done() == {"chunk000", "chunk003"}
    before = {path: path.read_bytes() for path in stage.folder.glob("chunk*")}
    calls.clear()
    resumed = run_tasks("squares", tasks(False), fan_out(synchronous=True, **QUIET), store=stage)
    assert [ids[0] for ids in calls] == ["img_006.jpg", "img_009.jpg", "img_012.jpg"]  # only the missing ones
    assert {path: path.read_bytes() for path in before} == before  # nothing written before was touched
    uninterrupted = run_tasks(
        "squares",
        tasks_for(15),
        fan_out(synchronous=True, **QUIET),
        store=ChunkStore(tmp_path / "whole").stage("squares", {"v": 1}),
    )
    for name in ("squares",):
        pd.testing.assert_frame_equal(concat_tables(resumed, name), concat_tables(uninterrupted, name))


def test_progress_reports_images_done_rate_and_time_left_in_the_log(caplog):
    caplog.set_level(logging.INFO, logger="dex_bias.fanout")
    run_tasks("squares", tasks_for(9, seconds=0.05), fan_out(synchronous=True, log_every=0, **QUIET))
    lines = [r.getMessage() for r in caplog.records if r.name == "dex_bias.fanout"]
    assert any("squares: 3/9 images (33 %)" in line and "images/s" in line and "left" in line for line in lines)
    assert any("9/9 images done" in line for line in lines)

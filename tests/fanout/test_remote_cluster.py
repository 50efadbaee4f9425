"""An existing cluster by address, started with the commands the README gives (``dask scheduler``,
``dask worker``): it aligns as a synchronous run does; a scheduler without workers, and a worker that
cannot see the image folder (its own mount namespace hides it, as on a machine without the shared
storage), each stop the run with one clear error before any task."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from dex_bias.fanout import FanOutError, close_clusters
from tests.conftest import REPO_ROOT, base_align_settings, base_parameters
from tests.fanout.conftest import fan_out

#: Scheduler and worker processes started and stopped per test.
pytestmark = pytest.mark.slow

CHUNK = base_parameters().align.chunk_size

DASK = [sys.executable, "-m", "dask"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment() -> dict[str, str]:
    path = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2", KEDRO_DISABLE_TELEMETRY="1")


def start(command: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(command, env=environment(), stdout=log, stderr=subprocess.STDOUT, cwd="/")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """``dask scheduler`` on a free port; its address."""
    log = open(tmp_path_factory.mktemp("scheduler") / "scheduler.log", "w")
    address = f"tcp://127.0.0.1:{free_port()}"
    process = start(
        [*DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"], log
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(address.rsplit(":", 1)[1]))) == 0:
                break
        time.sleep(0.2)
    yield address
    close_clusters()
    stop(process)
    log.close()


def worker(scheduler: str, log, name: str, *, hide: str | None = None) -> subprocess.Popen:
    """``dask worker <scheduler>`` (1 thread); with ``hide``, in a mount namespace where that folder is empty."""
    command = [*DASK, "worker", scheduler, "--nthreads", "1", "--no-dashboard", "--name", name]
    if hide:
        inner = f"mount -t tmpfs tmpfs '{hide}' && exec " + " ".join(f"'{part}'" for part in command)
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
    return start(command, log)


def wait_for_workers(address: str, count: int, timeout: float = 120) -> None:
    from distributed import Client

    with Client(address, timeout="20s") as client:
        client.wait_for_workers(count, timeout=timeout)


@pytest.fixture(scope="module")
def faces(demo_faces) -> pd.DataFrame:
    return demo_faces.head(8)[["image_id", "path"]]


def test_a_scheduler_with_no_worker_is_named_with_the_command_that_starts_one(scheduler, faces):
    from dex_bias.faces.align import align_table

    close_clusters()
    started = time.perf_counter()
    with pytest.raises(FanOutError) as raised:
        align_table(
            faces,
            base_align_settings(),
            fan_out(address=scheduler, connect_timeout=3, progress=False),
            chunk_size=CHUNK,
        )
    assert time.perf_counter() - started < 30
    assert f"dask worker {scheduler}" in str(raised.value) and "dask.address" in str(raised.value)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare to hide a folder from a worker")
def test_a_worker_that_cannot_see_the_images_stops_the_run_naming_the_first_path(scheduler, faces, tmp_path):
    from dex_bias.faces.align import align_table

    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine refuses mount namespaces ({probe.stderr.decode().strip()})")
    close_clusters()
    folder = os.path.dirname(faces["path"].iloc[0])
    with open(tmp_path / "blind.log", "w") as log:
        blind = worker(scheduler, log, "blind", hide=folder)
        try:
            wait_for_workers(scheduler, 1)
            with pytest.raises(FanOutError) as raised:
                align_table(faces, base_align_settings(), fan_out(address=scheduler, progress=False), chunk_size=CHUNK)
        finally:
            close_clusters()
            stop(blind)
    message = str(raised.value)
    assert faces["path"].iloc[0] in message  # the first image, by its full path
    assert "cannot read" in message and "same path" in message and "shared storage" in message


def test_an_existing_cluster_by_address_aligns_as_a_synchronous_run(scheduler, faces, tmp_path):
    from dex_bias.faces.align import align_table

    close_clusters()
    with open(tmp_path / "worker.log", "w") as log:
        sees = [worker(scheduler, log, f"sees-{k}") for k in range(2)]
        try:
            wait_for_workers(scheduler, 2)
            remote = align_table(faces, base_align_settings(), fan_out(address=scheduler, progress=False), chunk_size=2)
        finally:
            close_clusters()
            for process in sees:
                stop(process)
    here = align_table(faces, base_align_settings(), fan_out(synchronous=True, progress=False), chunk_size=2)
    for ours, reference in zip(remote, here):
        pd.testing.assert_frame_equal(ours, reference, check_exact=True)
    assert len(here[0]) >= 6

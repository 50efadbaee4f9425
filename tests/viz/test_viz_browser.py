"""Kedro-Viz, as a user opens it: ``kedro viz run`` on 127.0.0.1, headless Chromium, a screenshot.

``kedro viz run`` starts the web server in a child process (multiprocessing, spawn) and waits on
it; stopping only the parent would leave the child holding the port. The server is started in a
session of its own so the whole process group can be stopped, and the test checks that every
process of it is gone and the port is free.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import chromium_path, open_in_chromium
from tests.viz.lineage import FLOW_ORDER

pytestmark = pytest.mark.browser

HOST = "127.0.0.1"
SERVER_START_TIMEOUT_S = 180  # loading the project imports TensorFlow; a cold start is slow
#: Kedro-Viz's page asks Google Fonts for its typeface; a machine without internet cannot
#: resolve it. The page renders with a fallback font, so that request is not a fault of ours.
OFFLINE_TOLERATED_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com")


def free_port() -> int:
    """A port nobody listens on; below 49152, where `kedro viz run` refuses to go."""
    for port in random.sample(range(20000, 45000), 200):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found between 20000 and 45000")


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def process_group_members(pgid: int) -> list[int]:
    """Process ids whose process group is ``pgid`` (read from /proc: no psutil needed)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return sorted(members)


def stop_process_group(process: subprocess.Popen, grace_s: float = 15) -> None:
    """SIGTERM the server's whole group (parent and the child holding the port), then SIGKILL."""
    pgid = process.pid  # start_new_session=True: the group id is the leader's pid
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and process_group_members(pgid):
            try:
                process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        if not process_group_members(pgid):
            break
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


@contextmanager
def kedro_viz_server(project: Path, log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve ``project`` with ``kedro viz run`` on 127.0.0.1; yield (url, process); stop it all."""
    port = free_port()
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "kedro", "viz", "run", "--host", HOST, "--port", str(port), "--no-browser"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=project, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        url = None
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while url is None:
            output = log_path.read_text(errors="replace")
            # Kedro-Viz moves to the next port if ours was taken meanwhile: trust what it says.
            announced = re.search(r"running at\s+(http://127\.0\.0\.1:\d+/)", output)
            if announced:
                url = announced.group(1)
            elif process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`kedro viz run` did not come up in {project}:\n{output[-8000:]}")
            else:
                time.sleep(0.5)
        with urllib.request.urlopen(url + "api/main", timeout=30) as response:
            assert response.status == 200
        yield url, process
    finally:
        stop_process_group(process)


def errors_of_our_own(errors: list[str]) -> list[str]:
    """Console errors less those of an offline machine fetching Kedro-Viz's web font.

    Each blocked font request shows twice: as the failed request (which names the URL) and as
    Chromium's generic "Failed to load resource" console line; drop one of each per request.
    """
    offline = [
        e
        for e in errors
        if e.startswith("requestfailed:") and any(f"//{host}/" in e for host in OFFLINE_TOLERATED_HOSTS)
    ]
    remaining = [e for e in errors if e not in offline]
    for _ in offline:
        generic = next((e for e in remaining if "Failed to load resource: net::ERR_" in e), None)
        if generic is not None:
            remaining.remove(generic)
    return remaining


def test_errors_of_an_offline_font_request_are_told_from_real_ones():
    font = "requestfailed: https://fonts.googleapis.com/css2?family=Inter (net::ERR_NAME_NOT_RESOLVED)"
    generic = "console.error: Failed to load resource: net::ERR_NAME_NOT_RESOLVED"
    ours = "requestfailed: http://127.0.0.1:4141/api/main (net::ERR_CONNECTION_REFUSED)"
    assert errors_of_our_own([font, generic]) == []
    assert errors_of_our_own([font, generic, ours, generic]) == [ours, generic]
    assert errors_of_our_own(["pageerror: TypeError: x is undefined"]) == ["pageerror: TypeError: x is undefined"]


@pytest.mark.slow  # `kedro viz run` as a server subprocess, opened in Chromium
def test_kedro_viz_shows_every_pipeline_as_a_box_without_console_errors(project_factory, tmp_path):
    chromium_path()  # skip here (fail under CI) before starting a server, when there is no browser
    project = project_factory("viz_browser")
    screenshot = tmp_path / "kedro_viz.png"
    started = time.monotonic()
    with kedro_viz_server(project, tmp_path / "kedro_viz_run.log") as (url, server):
        serving_s = time.monotonic() - started
        group = process_group_members(server.pid)
        assert len(group) >= 2, f"expected `kedro viz run` and its server child, found processes {group}"
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        # Every pipeline's collapsed box, labelled with its name, must be drawn before the shot.
        all_boxes = "svg" + "".join(
            f':has(g.pipeline-node--modularPipeline[data-id="{name}"]:has-text("{name}"))' for name in FLOW_ORDER
        )
        errors = open_in_chromium(url, screenshot, wait_for=all_boxes, viewport=(1600, 1400))
    print(f"kedro viz run served in {serving_s:.1f} s; total with browser {time.monotonic() - started:.1f} s")

    assert screenshot.stat().st_size > 10_000, "the screenshot is (nearly) blank"
    if os.environ.get("DEX_BIAS_ARTIFACTS"):
        artifacts = Path(os.environ["DEX_BIAS_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, artifacts / screenshot.name)
    assert errors_of_our_own(errors) == []

    left = process_group_members(server.pid)
    assert left == [], f"processes of `kedro viz run` still alive after stopping it: {left}"
    assert server.returncode is not None
    assert not is_listening(port), f"port {port} still accepts connections after the server stopped"
    with socket.socket() as probe:  # and it can be taken again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))

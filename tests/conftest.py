"""Fixtures shared by every test folder.

- ``project_factory(name, params=None)``: a fresh Kedro project folder (conf copied, ``src``
  linked, empty data layers) under a temporary folder; ``params`` (a dict of dotted keys) is
  written to that copy's ``conf/local/parameters_test.yml``, so a test can shrink the demo.
- ``run_kedro(project, *args, env=None)``: ``kedro run`` there in a subprocess (telemetry off);
  on failure the assertion shows the output.
- ``demo_run``: a project in which the full ``kedro run`` on a small demo set has completed once
  (shared by every test of the session that needs the whole flow).
- ``utkface_dir``: ``crop_part1`` of UTKFace unpacked from ``../shared/data`` (skipped, with the
  reason, where that tar is absent, as on a user's fresh machine).
- ``base_parameters(overrides)``: conf/base's parameters as the settings classes a run builds
  (``overrides``: dotted keys, as ``--params`` gives them); a test changes what it needs with
  ``dataclasses.replace``, so its values come from the YAML, never from a copy in the test.
  ``parameter_inputs(pipeline, parameters)`` gives a pipeline's ``params:`` inputs from them.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Callable

import pytest
import yaml
from kedro.io import MemoryDataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TAR = REPO_ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"
DATA_LAYERS = (
    "01_raw", "02_intermediate", "03_primary", "04_feature",
    "05_model_input", "06_models", "07_model_output", "08_reporting",
)

#: The demo used by end-to-end tests: small enough for CI, large enough for the statistics.
TEST_DEMO_PARAMS: dict[str, object] = {}

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def base_parameters(overrides: dict[str, object] | None = None):
    """conf/base's parameters, typed and checked (``dex_bias.parameters.ProjectParameters``)."""
    from dex_bias.parameters import project_parameters

    if not overrides:
        return _plain_base_parameters()
    return project_parameters(REPO_ROOT / "conf", env="base", overrides=overrides)


@functools.cache
def _plain_base_parameters():
    from dex_bias.parameters import project_parameters

    return project_parameters(REPO_ROOT / "conf", env="base")


def base_align_settings(**changes):
    """The ``AlignSettings`` conf/base's ``align`` blocks state, with ``changes``."""
    from dataclasses import replace

    from dex_bias.faces.detect import AlignSettings

    align = base_parameters().align
    return replace(AlignSettings.from_parameters(align.detection, align.crop, align.five_point), **changes)


def parameter_inputs(pipeline, parameters) -> dict[str, object]:
    """The ``params:`` inputs of ``pipeline`` as a run feeds them, read from ``parameters``
    (``params:align.crop`` is ``parameters.align.crop``)."""
    values = {}
    for name in pipeline.inputs():
        if name.startswith("params:"):
            value = parameters
            for part in name.removeprefix("params:").split("."):
                value = getattr(value, part)
            values[name] = value
    return values


def _nest(dotted: dict[str, object]) -> dict:
    nested: dict = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def make_project(root: Path, params: dict[str, object] | None = None) -> Path:
    """Lay out a runnable copy of this project at ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "conf", root / "conf", dirs_exist_ok=True)
    (root / "conf" / "local").mkdir(exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(REPO_ROOT / name, root / name)
    # Kedro resolves the source folder and insists it lies inside the project, so the copy
    # gets a real src/ holding a link to the package (edits in the repo are seen at once).
    (root / "src").mkdir(exist_ok=True)
    if not (root / "src" / "dex_bias").exists():
        (root / "src" / "dex_bias").symlink_to(REPO_ROOT / "src" / "dex_bias", target_is_directory=True)
    for layer in DATA_LAYERS:
        (root / "data" / layer).mkdir(parents=True, exist_ok=True)
    if params:
        with open(root / "conf" / "local" / "parameters_test.yml", "w") as fh:
            yaml.safe_dump(_nest(params), fh)
    return root


def run_kedro(project: Path, *args: str, env: str | None = None, check: bool = True,
              timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run ``kedro run *args`` in ``project``; fail the test with its output when it fails."""
    command = [sys.executable, "-m", "kedro", "run", *args]
    if env:
        command += ["--env", env]
    environ = dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONUNBUFFERED="1", COLUMNS="400")  # rich wraps at the width: long paths split
    done = subprocess.run(command, cwd=project, capture_output=True, text=True,
                          timeout=timeout, env=environ)
    if check and done.returncode != 0:
        pytest.fail(f"`{' '.join(command[2:])}` failed in {project}:\n{done.stdout[-6000:]}\n{done.stderr[-12000:]}")
    return done


@pytest.fixture(scope="session")
def project_factory(tmp_path_factory) -> Callable[..., Path]:
    def factory(name: str, params: dict[str, object] | None = None) -> Path:
        return make_project(tmp_path_factory.mktemp(name), params)
    return factory


@pytest.fixture(scope="session")
def demo_run(project_factory) -> Path:
    """A project where the full ``kedro run`` on the default demo has completed."""
    project = project_factory("demo_run", TEST_DEMO_PARAMS)
    run_kedro(project)
    return project


@pytest.fixture(scope="session")
def utkface_dir(tmp_path_factory) -> Path:
    if not SHARED_TAR.exists():
        pytest.skip(f"real UTKFace images not here: {SHARED_TAR} is absent (CI has it; a fresh machine does not)")
    target = tmp_path_factory.mktemp("utkface")
    with tarfile.open(SHARED_TAR) as tar:
        tar.extractall(target, filter="data")
    return target / "crop_part1"


class KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so a test can read every output after a run."""

    def _release(self) -> None:
        pass


@pytest.fixture
def audited_models_config():
    """Set the ``models`` parameters of pipelines built in this test (``dex_bias.model_audit``): the
    base ones with the keys given changed (``audited_models_config(audit=[...])``); restored after."""
    from dataclasses import replace

    from dex_bias import model_audit

    before = model_audit._ACTIVE
    yield lambda **changes: model_audit.configure(replace(base_parameters().models, **changes))
    model_audit._ACTIVE = before

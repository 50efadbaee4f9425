"""Fixtures shared by every test folder.

- ``run_in_process(pipeline, inputs, parameters)``: a pipeline (or a slice of it:
  ``.from_nodes(...).to_nodes(...)``) run by Kedro's ``SequentialRunner`` on memory datasets, as
  the spaceflights starter's tests do; ``params:`` inputs come from conf/base unless given. Every
  pipeline's tests run this way on tiny inputs.
- ``project_catalog(root, env)``: the project's own catalog (conf/base + ``env``) with its files
  under ``root``, for a test that persists or reads a dataset as a run does.
- ``latest(project, relative)``: the newest version of a versioned output.
- ``rendered_faces(folder, count, seed)``: demo faces drawn into ``folder`` with their own 68
  landmarks, ``(faces, landmarks)``, for pipelines after align; ``SYNCHRONOUS_DASK``: the
  ``dask`` overrides that keep the per-image work in this process.
- ``project_factory(name, params=None)``: a fresh Kedro project folder (conf copied, ``src``
  linked, empty data layers) under a temporary folder; ``params`` (a dict of dotted keys) is
  written to that copy's ``conf/local/parameters_test.yml``, so a test can shrink the demo.
- ``run_kedro(project, *args, env=None)``: ``kedro run`` there in a subprocess (telemetry off);
  on failure the assertion shows the output. For end-to-end tests (marked ``slow``) and the few
  that check a run stops before its first node.
- ``demo_run``: a project in which the full ``kedro run`` on a small demo set has completed once
  (shared by every slow test of the session that needs the whole flow).
- ``utkface_dir``: ``crop_part1`` of UTKFace unpacked from ``../shared/data`` (skipped, with the
  reason, where that tar is absent, as on a user's fresh machine).
- ``base_parameters(overrides)``: conf/base's parameters as the settings classes a run builds
  (``overrides``: dotted keys, as ``--params`` gives them); a test changes what it needs with
  ``dataclasses.replace``, so its values come from the YAML, never from a copy in the test.
  ``parameter_inputs(pipeline, parameters)`` gives a pipeline's ``params:`` inputs from them.
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from kedro.io import MemoryDataset
from omegaconf import OmegaConf

from dex_bias import DATA_LAYERS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TAR = REPO_ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"

#: The demo used by end-to-end tests: small enough for CI, large enough for the statistics.
TEST_DEMO_PARAMS: dict[str, object] = {}
#: Dotted overrides for in-process pipeline tests: Dask tasks run one after another in this
#: process (a cluster gives the same tables: tests/fanout).
SYNCHRONOUS_DASK = {"dask.synchronous": True, "dask.progress": False}

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Kedro sets up its logging when kedro.framework.project is first imported, replacing the root
# logger's handlers; done here, before any test, so it cannot drop a test's caplog handler midway.
importlib.import_module("kedro.framework.project")


def base_parameters(overrides: dict[str, object] | None = None):
    """conf/base's parameters, typed and checked (``dex_bias.parameters.ProjectParameters``)."""
    from dex_bias.parameters import project_parameters

    if not overrides:
        return _plain_base_parameters()
    return project_parameters(REPO_ROOT / "conf", env="base", overrides=overrides)


def base_settings(block: str, **changes):
    """conf/base's settings block ``block`` (dotted: ``"explain.lime"``), typed, with ``changes`` made."""
    settings = operator.attrgetter(block)(base_parameters())
    return replace(settings, **changes) if changes else settings


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


def run_in_process(
    pipeline, inputs: dict[str, object] | None = None, parameters=None, catalog=None
) -> dict[str, object]:
    """Run ``pipeline`` with Kedro's ``SequentialRunner`` on a catalog of memory datasets (the
    spaceflights starter's way of testing a pipeline) and return what it makes, its intermediates
    included, by dataset name.

    ``inputs``: data by dataset name, or a dataset object used as it is (an ``OptionalDataset``,
    a versioned file: an output saved as a run saves it, which the test reads back itself).
    Tables given are copied, so a node that changes its input in place cannot change a shared
    fixture. Every ``params:`` input not given is read from ``parameters`` (default:
    :func:`base_parameters`). ``catalog`` (a :func:`project_catalog`): every other dataset it
    declares is read and saved there, as a run does.
    """
    import pandas as pd
    from kedro.io import AbstractDataset, DataCatalog
    from kedro.runner import SequentialRunner

    declared = {} if catalog is None else {name: catalog.get(name) for name in pipeline.datasets()}
    given = {
        **{name: dataset for name, dataset in declared.items() if dataset is not None},
        **parameter_inputs(pipeline, parameters or base_parameters()),
        **(inputs or {}),
    }
    missing = pipeline.inputs() - set(given)
    assert not missing, f"no data given for the inputs {sorted(missing)} of the pipeline under test"
    run_catalog = DataCatalog()
    for name in pipeline.datasets():
        if name not in given:
            run_catalog[name] = KeptDataset(copy_mode=_memory_copy_modes().get(name))
        elif isinstance(given[name], AbstractDataset):
            run_catalog[name] = given[name]
        else:
            copy_mode = "copy" if isinstance(given[name], pd.DataFrame) else "assign"
            run_catalog[name] = KeptDataset(given[name], copy_mode=copy_mode)
    SequentialRunner().run(pipeline, run_catalog)
    return {name: run_catalog.load(name) for name in sorted(pipeline.all_outputs() - set(given))}


@functools.cache
def _memory_copy_modes() -> dict[str, str]:
    """The ``copy_mode`` of conf/base's ``MemoryDataset`` entries (a Keras model is passed as is)."""
    return {
        name: entry["copy_mode"]
        for name, entry in _catalog_config(REPO_ROOT / "conf", None).items()
        if entry.get("type") == "MemoryDataset" and "copy_mode" in entry
    }


def _catalog_config(conf: Path, env: str | None) -> dict[str, dict]:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env=env or "local")
    return {name: entry for name, entry in loader["catalog"].items() if isinstance(entry, dict)}


def _under(root: Path, entry: dict) -> dict:
    """``entry`` with its relative ``filepath``/``path`` keys (nested ones too) made absolute under ``root``."""
    moved = {}
    for key, value in entry.items():
        if isinstance(value, dict):
            value = _under(root, value)
        elif key in ("filepath", "path") and isinstance(value, str) and not Path(value).is_absolute():
            value = str(root / value)
        moved[key] = value
    return moved


def project_catalog(root: Path, env: str | None = None, conf: Path = REPO_ROOT / "conf"):
    """The project's catalog as ``kedro run --env <env>`` in ``root`` sees it: the configuration
    in ``conf``, file paths under ``root``, versions by Kedro's rules (the latest is loaded, a
    save makes a new one)."""
    from kedro.io import DataCatalog

    entries = _catalog_config(conf, env)
    return DataCatalog.from_config({name: _under(root, entry) for name, entry in entries.items()})


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned output (``data/.../name.ext/<stamp>/name.ext``)."""
    folder = project / relative
    stamps = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    assert stamps, f"no version of {relative} was written in {project}"
    return stamps[-1] / folder.name


def rendered_faces(folder: Path, count: int, seed: int, size: int = 128):
    """``count`` faces of the demo's renderer saved in ``folder``, with the renderer's own 68
    landmarks standing in for dlib's (crop: their box with a 40 % margin), so a pipeline after
    align runs without detecting faces: ``(faces, landmarks)``, every face in split ``test``."""

    import numpy as np
    import pandas as pd
    from PIL import Image

    from dex_bias.demo.generate import plan_demo, render_demo_face
    from dex_bias.faces import LANDMARK_X_COLUMNS, LANDMARK_Y_COLUMNS
    from dex_bias.utkface import age_bands

    folder.mkdir(parents=True, exist_ok=True)
    rows, marks = [], []
    for face, rng in plan_demo(base_settings("ingest.demo", count=count, size=size, seed=seed)):
        image, points = render_demo_face(face, rng, size)
        path = folder / face.file_name
        Image.fromarray(image).save(path)
        rows.append(
            {
                "image_id": face.file_name,
                "path": str(path),
                "age": face.age,
                "gender": face.gender,
                "race": face.race,
                "split": "test",
            }
        )
        left, top = points.min(axis=0) - 0.4 * np.ptp(points, axis=0)
        side = 1.8 * np.ptp(points, axis=0).max()
        mark = {
            "image_id": face.file_name,
            "crop_a": side,
            "crop_b": 0.0,
            "crop_c": left,
            "crop_d": 0.0,
            "crop_e": side,
            "crop_f": top,
        }
        mark.update(dict(zip(LANDMARK_X_COLUMNS, points[:, 0])))
        mark.update(dict(zip(LANDMARK_Y_COLUMNS, points[:, 1])))
        marks.append(mark)
    faces = pd.DataFrame(rows)
    faces["age_band"] = age_bands(faces["age"]).astype(str)
    return faces, pd.DataFrame(marks)


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
        nested = OmegaConf.create()
        for dotted, value in params.items():  # {"ingest.demo.count": 40} -> {"ingest": {"demo": {"count": 40}}}
            OmegaConf.update(nested, dotted, value, merge=True)
        with open(root / "conf" / "local" / "parameters_test.yml", "w") as fh:
            yaml.safe_dump(OmegaConf.to_container(nested), fh)
    return root


def run_kedro(
    project: Path, *args: str, env: str | None = None, check: bool = True, timeout: float = 1200
) -> subprocess.CompletedProcess:
    """Run ``kedro run *args`` in ``project``; fail the test with its output when it fails."""
    command = [sys.executable, "-m", "kedro", "run", *args]
    if env:
        command += ["--env", env]
    environ = dict(
        os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", COLUMNS="400"
    )  # rich wraps at the width: long paths split
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout, env=environ)
    if check and done.returncode != 0:
        pytest.fail(f"`{' '.join(command[2:])}` failed in {project}:\n{done.stdout[-6000:]}\n{done.stderr[-12000:]}")
    return done


@pytest.fixture(scope="session")
def project_factory(tmp_path_factory) -> Callable[..., Path]:
    def factory(name: str, params: dict[str, object] | None = None) -> Path:
        return make_project(tmp_path_factory.mktemp(name), params)

    return factory


def pytest_collection_modifyitems(items) -> None:
    """Every test that needs ``demo_run`` (minutes of ``kedro run``), even through another fixture,
    must be marked ``slow``, so ``pytest -m "not slow"`` never starts it."""
    unmarked = [
        item.nodeid
        for item in items
        if "demo_run" in getattr(item, "fixturenames", ()) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use demo_run (a full kedro run of the demo) but are not marked "
            "@pytest.mark.slow: " + ", ".join(unmarked)
        )


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

    from dex_bias import model_audit

    before = model_audit._ACTIVE
    yield lambda **changes: model_audit.configure(base_settings("models", **changes))
    model_audit._ACTIVE = before

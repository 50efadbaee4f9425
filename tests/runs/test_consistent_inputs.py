"""A pipeline run alone reads inputs that belong together, or stops before any node and says why.

Real ingest and align runs (in this process) on a small demo; train is run only up to
``train.select_training_faces`` (faces + landmarks -> the training table, in memory), which is
where train reads its persisted inputs, so no model is fitted here (tests/runs/test_killed_runs.py
runs train and infer whole).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dex_bias.hooks import MissingUpstreamError
from dex_bias.runs.hooks import InconsistentInputsError, InputVersionError
from dex_bias.runs.ledger import RUNS_FOLDER
from tests.conftest import base_parameters
from tests.runs.conftest import manifest, pretend_running, session_run, set_aside, versions

SMALL = {"ingest.demo.count": 24, "dask.synchronous": True, "dask.progress": False, "align.contact_sheet.count": 4}
FACES, LANDMARKS = "data/02_intermediate/faces.parquet", "data/03_primary/landmarks.parquet"
TRAIN_READS = ["train.select_training_faces"]

#: Every test runs ingest, align and the start of train in Kedro sessions of project copies.
pytestmark = pytest.mark.slow


def _read_by_train(project: Path, monkeypatch, **kwargs) -> dict:
    """Run train up to where it reads faces and landmarks; the versions it read, from its manifest."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    monkeypatch.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=kwargs.pop("params", None)) as session:
        run_id = session.store["session_id"]
        session.run(pipeline_names=["train"], to_nodes=TRAIN_READS, **kwargs)
    record = manifest(project, run_id)
    return {name: read.get("version") for name, read in record["inputs"].items()} | {"_record": record}


@pytest.fixture(scope="module")
def aligned(project_factory) -> tuple[Path, str]:
    """A project where ingest + align ran once on the demo: faces and landmarks of run ``first``."""
    project = project_factory("consistent_inputs", SMALL)
    with pytest.MonkeyPatch.context() as monkeypatch:
        first = session_run(project, monkeypatch, ["ingest", "align"])
    other = project / "data" / "01_raw" / "other_faces"
    other.mkdir()
    for image in sorted((project / "data" / "01_raw" / "demo_faces").glob("*.jpg"))[:16]:
        shutil.copy(image, other / image.name)
    return project, first


def _copy(aligned, tmp_path) -> tuple[Path, str]:
    project, first = aligned
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    return copy, first


def test_newer_faces_than_the_landmarks_stop_the_run_naming_both_versions_and_the_fixes(aligned, tmp_path, monkeypatch):
    project, first = _copy(aligned, tmp_path)
    newer = session_run(project, monkeypatch, ["ingest"], params={"ingest": {"image_dir": "data/01_raw/other_faces"}})
    runs_before = sorted((project / RUNS_FOLDER).iterdir())
    with pytest.raises(InconsistentInputsError) as error:
        _read_by_train(project, monkeypatch)
    message = str(error.value)
    assert f"landmarks {first} was made from faces {first}, not from faces {newer}" in message
    assert "no node was run" in message
    assert "kedro run --pipelines=align,train" in message  # makes landmarks from the newest faces
    assert f"--load-versions=faces:{first},landmarks:{first}" in message  # or reads the older set
    assert "runs.accept_mismatched_inputs=true" in message
    assert sorted((project / RUNS_FOLDER).iterdir()) == runs_before  # nothing started, nothing written

    # The two ways out it names both work.
    read = _read_by_train(project, monkeypatch, load_versions={"faces": first, "landmarks": first})
    assert (read["faces"], read["landmarks"]) == (first, first)
    remade = session_run(project, monkeypatch, ["align"])
    read = _read_by_train(project, monkeypatch)
    assert (read["faces"], read["landmarks"]) == (newer, remade)
    assert manifest(project, remade)["outputs"]["landmarks"]["inputs"]["faces"]["version"] == newer
    # The same record in the Parquet file's own metadata (and not the faces' record it was made from).
    record = pd.read_parquet(project / LANDMARKS / remade / "landmarks.parquet").attrs["dex_bias_provenance"]
    assert (record["dataset"], record["run_id"], record["inputs"]) == ("landmarks", remade, {"faces": newer})
    assert record["made_by"] == ["align.align_faces"]
    assert record["parameters"] == [
        "params:align.chunk_size",
        "params:align.crop",
        "params:align.detection",
        "params:align.five_point",
        "params:dask",
    ]


def test_a_mismatch_asked_for_with_load_versions_is_refused_unless_accepted(aligned, tmp_path, monkeypatch):
    project, first = _copy(aligned, tmp_path)
    newer = session_run(project, monkeypatch, ["ingest"], params={"ingest": {"image_dir": "data/01_raw/other_faces"}})
    remade = session_run(project, monkeypatch, ["align"])
    with pytest.raises(
        InconsistentInputsError, match=rf"landmarks {first} was made from faces {first}, not from faces {newer}"
    ):
        _read_by_train(project, monkeypatch, load_versions={"landmarks": first, "faces": newer})
    # Pinning one pulls the other to the version it belongs with.
    read = _read_by_train(project, monkeypatch, load_versions={"landmarks": first})
    assert (read["faces"], read["landmarks"]) == (first, first)
    assert read["_record"]["decisions"]["older"]["faces"]["newest"] == newer
    read = _read_by_train(
        project,
        monkeypatch,
        load_versions={"landmarks": first, "faces": newer},
        params={"runs": {"accept_mismatched_inputs": True}},
    )
    assert (read["faces"], read["landmarks"]) == (newer, first)
    assert read["_record"]["decisions"]["mismatches_accepted"] == [
        f"landmarks {first} was made from faces {first}, not from faces {newer}"
    ]
    assert remade in versions(project, LANDMARKS)


def test_an_ingest_and_align_that_failed_during_align_leaves_the_last_consistent_set(
    aligned, tmp_path, monkeypatch, runs_log
):
    project, first = _copy(aligned, tmp_path)

    def broken_align(*args, **kwargs):
        raise ValueError("align stopped halfway")

    # (A broken align parameter no longer gets that far: it stops the run before any node.)
    with monkeypatch.context() as patched, pytest.raises(ValueError, match="align stopped halfway"):
        patched.setattr("dex_bias.pipelines.align.nodes.align_table", broken_align)
        session_run(
            project, monkeypatch, ["ingest", "align"], params={"ingest": {"image_dir": "data/01_raw/other_faces"}}
        )
    failed = set_aside(project, FACES)
    assert len(failed) == 1 and versions(project, FACES) == [first]  # its faces were saved, then set aside
    assert f"Run {failed[0]} did not finish (ValueError)" in runs_log.text
    read = _read_by_train(project, monkeypatch)
    assert (read["faces"], read["landmarks"]) == (first, first)
    with pytest.raises(InputVersionError, match=r"written by a run that did not finish.*\.incomplete"):
        _read_by_train(project, monkeypatch, load_versions={"faces": failed[0]})
    with pytest.raises(InputVersionError, match=rf"has no such version.*newest: {first}"):
        _read_by_train(project, monkeypatch, load_versions={"faces": "2001-01-01T00.00.00.000Z"})


def test_the_missing_dataset_hint_says_what_works(project_factory, monkeypatch):
    """Before: 'put the file at …/faces.parquet' (a file there is never read). After: a version folder."""
    from dex_bias.pipelines.ingest.nodes import prepare_image_folder, screen_images, split_faces

    project = project_factory("hand_placed_faces", SMALL)
    with pytest.raises(MissingUpstreamError) as error:
        session_run(project, monkeypatch, ["align"])
    message = " ".join(str(error.value).split())
    assert "'faces' has never been made: run `kedro run --pipelines=ingest`" in message
    command = re.search(r"`(mkdir -p \S+ && cp <your file> \S+)`", message).group(1)

    # Faces made elsewhere (here: by the ingest nodes, outside any run).
    ingest = base_parameters({"ingest.demo.count": SMALL["ingest.demo.count"]}).ingest
    screened, _ = screen_images(prepare_image_folder(ingest.image_dir, ingest.demo), ingest.decode)
    faces = split_faces(screened, ingest.split, ingest.age_bands)
    made_elsewhere = project / "faces_from_elsewhere.parquet"
    faces.to_parquet(made_elsewhere)

    # The mistake the old hint led to: the file at the dataset's path itself.
    shutil.copy(made_elsewhere, project / FACES)
    with pytest.raises(MissingUpstreamError) as error:
        session_run(project, monkeypatch, ["align"])
    message = " ".join(str(error.value).split())
    assert f"a file sits at {project / FACES}" in message
    move = re.search(r"move it with `([^`]+)`", message).group(1)
    subprocess.run(move, shell=True, check=True, cwd=project)
    placed = versions(project, FACES)
    assert len(placed) == 1
    aligned_run = session_run(project, monkeypatch, ["align"])
    assert manifest(project, aligned_run)["outputs"]["landmarks"]["inputs"]["faces"]["version"] == placed[0]

    # And the hinted command itself, on a project that never had faces.
    fresh = project_factory("hand_placed_faces_hint", SMALL)
    subprocess.run(
        command.replace(str(project), str(fresh)).replace("<your file>", str(made_elsewhere)), shell=True, check=True
    )
    assert len(versions(fresh, FACES)) == 1
    session_run(fresh, monkeypatch, ["align"])
    assert len(versions(fresh, LANDMARKS)) == 1
    assert pd.read_parquet(next((fresh / FACES).glob("*/faces.parquet"))).equals(faces)


def test_versions_a_run_is_still_writing_are_not_read(aligned, tmp_path, monkeypatch, runs_log):
    project, first = _copy(aligned, tmp_path)
    writing = "2099-01-01T00.00.00.000Z"  # newer than any finished version
    (project / FACES / writing).mkdir()
    shutil.copy(project / FACES / first / "faces.parquet", project / FACES / writing / "faces.parquet")
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pretend_running(project, writing, {"faces": FACES, "landmarks": LANDMARKS}, other_run)
        read = _read_by_train(project, monkeypatch)
        assert (read["faces"], read["landmarks"]) == (first, first)  # not faces 2099, and no clash
        assert versions(project, FACES)[-1] == writing  # left where it is: that run is alive
    finally:
        other_run.kill()
        other_run.wait()
    read = _read_by_train(project, monkeypatch)  # that run's process is gone now: swept first
    assert (read["faces"], read["landmarks"]) == (first, first)
    assert writing in set_aside(project, FACES)
    assert f"Run {writing} did not finish (its process ended before the run finished" in runs_log.text

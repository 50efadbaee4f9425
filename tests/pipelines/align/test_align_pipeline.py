"""The align pipeline: parameters, a local Dask cluster equal to a synchronous run, awkward image files,
and ingest + align end to end on real UTKFace chips (counts reconcile, ≥ 97 % detected)."""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from dex_bias.faces.detect import AlignSettings
from dex_bias.parameters import ParameterError
from dex_bias.pipelines.align.nodes import align_faces, draw_contact_sheet
from dex_bias.pipelines.align.pipeline import create_pipeline as align_pipeline
from dex_bias.pipelines.ingest.pipeline import create_pipeline as ingest_pipeline
from tests.conftest import SYNCHRONOUS_DASK, base_parameters, base_settings, latest, run_in_process, run_kedro

PARAMS = base_parameters().align
DASK = base_parameters().dask


def with_dask(**dask):
    return replace(DASK, progress=False, **dask)


def align(faces: pd.DataFrame, dask, chunk_size: int = PARAMS.chunk_size):
    return align_faces(faces, PARAMS.detection, PARAMS.crop, PARAMS.five_point, chunk_size, dask)


def contact(faces: pd.DataFrame, landmarks: pd.DataFrame):
    return draw_contact_sheet(faces, landmarks, PARAMS.contact_sheet, PARAMS.crop)


def test_parameters_give_the_stages_in_order_and_refuse_unknown_keys():
    settings = AlignSettings.from_parameters(PARAMS.detection, PARAMS.crop, PARAMS.five_point)
    assert [(s.name, s.upsample, s.pad) for s in settings.stages] == [
        ("upsample_1", 1, 0.0),
        ("padded", 1, 0.25),
        ("upsample_2", 2, 0.0),
    ]
    assert (settings.margin, settings.alignment, settings.edge) == (0.4, "box", "pad")
    assert PARAMS.chunk_size == 16
    # An env that sets a few keys of `align` keeps the base values of the rest (the soft merge).
    assert base_parameters({"align.chunk_size": 4}).align == replace(PARAMS, chunk_size=4)
    no_fallbacks = base_parameters({"align.detection.fallbacks": []}).align
    assert (
        AlignSettings.from_parameters(no_fallbacks.detection, PARAMS.crop, PARAMS.five_point).stages
        == settings.stages[:1]
    )
    with pytest.raises(ParameterError, match="upsampel"):
        base_parameters({"align.detection.fallbacks": [{"name": "x", "upsampel": 2, "pad": 0.0}]})
    with pytest.raises(ParameterError, match="parameters_dask.yml"):  # the old align.dask block says where it went
        base_parameters({"align.dask": {"scheduler": "processes"}})
    with pytest.raises(ParameterError, match="scheduler"):
        base_parameters({"dask.scheduler": "processes"})


@pytest.fixture(scope="module")
def awkward_faces(tmp_path_factory) -> pd.DataFrame:
    """Synthetic faces saved in the layouts real folders hold, plus files that cannot be aligned."""
    from dex_bias.demo.generate import plan_demo, render_demo_face

    folder = tmp_path_factory.mktemp("awkward")
    demo = base_settings("ingest.demo", count=9, seed=3)
    rendered = [render_demo_face(face, rng, 200)[0] for face, rng in plan_demo(demo)]
    files = {}
    for k, image in enumerate(rendered[:4]):
        files[f"rgb_{k}.jpg"] = lambda path, image=image: Image.fromarray(image).save(path, quality=92)
    files["gray.jpg"] = lambda path: Image.fromarray(rendered[4]).convert("L").save(path)
    files["cmyk.jpg"] = lambda path: Image.fromarray(rendered[5]).convert("CMYK").save(path, "JPEG")
    files["png_named.jpg"] = lambda path: Image.fromarray(rendered[6]).save(path, "PNG")
    sixteen = np.asarray(Image.fromarray(rendered[7]).convert("L"), dtype=np.uint16) * 257
    files["sixteen_bit.png"] = lambda path: Image.fromarray(sixteen).save(path)
    files["blank.jpg"] = lambda path: Image.fromarray(np.full((200, 200, 3), 200, np.uint8)).save(path)
    for name, write in files.items():
        write(folder / name)
    (folder / "deleted_after_ingest.jpg").write_bytes(b"")
    names = [*files, "deleted_after_ingest.jpg"]
    return pd.DataFrame({"image_id": names, "path": [str(folder / n) for n in names]})


def test_awkward_layouts_are_converted_and_aligned_and_the_rest_fail_with_their_reason(awkward_faces):
    landmarks, failures = align(awkward_faces, with_dask(synchronous=True), chunk_size=2)
    # Every awkward layout is converted and aligned; only the blank and the emptied file fail.
    assert len(landmarks) + len(failures) == len(awkward_faces)
    assert dict(zip(failures["image_id"], failures["reason"])) == {
        "blank.jpg": "no_face_found",
        "deleted_after_ingest.jpg": "image_unreadable",
    }
    assert landmarks["image_id"].tolist() == [
        n for n in awkward_faces["image_id"] if n not in set(failures["image_id"])
    ]


@pytest.mark.slow  # starts a LocalCluster of 2 workers
def test_a_local_dask_cluster_gives_the_synchronous_tables(awkward_faces):
    serial = align(awkward_faces, with_dask(synchronous=True), chunk_size=2)
    fanned = align(awkward_faces, with_dask(workers=2), chunk_size=2)
    for ours, reference in zip(fanned, serial):
        pd.testing.assert_frame_equal(ours, reference)


def test_contact_sheet_is_a_figure_even_with_nothing_aligned(awkward_faces):
    landmarks, _ = align(awkward_faces.head(2), with_dask(synchronous=True))
    figure = contact(awkward_faces, landmarks)
    assert isinstance(figure, Figure) and len(figure.axes) >= len(landmarks)
    empty = contact(awkward_faces, landmarks.head(0))
    assert isinstance(empty, Figure) and any("no aligned faces" in text.get_text() for text in empty.texts)


def test_no_faces_give_empty_tables_with_the_contract_types():
    faces = pd.DataFrame({"image_id": pd.Series([], dtype=str), "path": pd.Series([], dtype=str)})
    landmarks, failures = align(faces, with_dask(synchronous=True))
    assert (len(landmarks), len(failures)) == (0, 0)
    assert landmarks["x_00"].dtype == np.float64 and landmarks["face_count"].dtype == np.int64
    assert list(failures.columns) == ["image_id", "path", "reason", "detail"]
    assert isinstance(contact(faces, landmarks), Figure)


def test_ingest_then_align_in_process_accounts_for_every_demo_face(tmp_path, monkeypatch, caplog):
    pipeline = (ingest_pipeline() + align_pipeline()).to_nodes("align.align_faces")
    monkeypatch.chdir(tmp_path)  # the demo folder is relative to the project, as in a run
    with caplog.at_level(logging.INFO):
        made = run_in_process(pipeline, parameters=base_parameters({"ingest.demo.count": 40, **SYNCHRONOUS_DASK}))
    faces, landmarks, failures = made["faces"], made["landmarks"], made["alignment_failures"]
    assert len(faces) == len(landmarks) + len(failures) == 40
    assert len(landmarks) >= 36  # the demo is drawn so that HOG finds about 9 in 10
    assert set(landmarks["image_id"]).isdisjoint(failures["image_id"])
    assert set(landmarks["image_id"]) | set(failures["image_id"]) == set(faces["image_id"])
    assert set(failures["reason"]) <= {"no_face_found"}
    assert "faces = landmarks + alignment_failures" in caplog.text


@pytest.mark.slow  # a kedro run of ingest and align on 220 real chips
@pytest.mark.real_data
def test_ingest_and_align_on_real_chips_reconcile_and_find_faces(utkface_dir, project_factory, tmp_path):
    chips = sorted(p for p in utkface_dir.iterdir() if p.name.endswith(".jpg.chip.jpg"))
    folder = tmp_path / "chips"
    folder.mkdir()
    for path in random.Random(20170109).sample(chips, 220):
        shutil.copy(path, folder / path.name)
    project = project_factory("align_real", {"ingest.image_dir": str(folder), "align.chunk_size": 16})
    done = run_kedro(project, "--pipelines=ingest,align")

    faces = pd.read_parquet(latest(project, "data/02_intermediate/faces.parquet"))
    landmarks = pd.read_parquet(latest(project, "data/03_primary/landmarks.parquet"))
    failures = pd.read_parquet(latest(project, "data/03_primary/alignment_failures.parquet"))
    sheet = latest(project, "data/08_reporting/align_contact_sheet.png")

    assert len(faces) == 220
    assert len(faces) == len(landmarks) + len(failures)
    assert set(landmarks["image_id"]).isdisjoint(failures["image_id"])
    assert set(landmarks["image_id"]) | set(failures["image_id"]) == set(faces["image_id"])
    assert set(failures["reason"]) <= {"no_face_found"}
    assert len(landmarks) / len(faces) >= 0.97
    assert "faces = landmarks + alignment_failures" in " ".join((done.stdout + done.stderr).split())
    # One run, one stamp: the three align outputs share the version folder name.
    assert (
        len(
            {
                path.parent.name
                for path in (
                    sheet,
                    latest(project, "data/03_primary/landmarks.parquet"),
                    latest(project, "data/03_primary/alignment_failures.parquet"),
                )
            }
        )
        == 1
    )
    assert Image.open(sheet).size[0] > 400
    # Landmarks sit inside their crops: the 40 % margin keeps the face well inside.
    from dex_bias.faces import landmarks_in_crop

    in_crop = landmarks_in_crop(landmarks, 100)
    assert np.median(in_crop[..., 0]) == pytest.approx(50, abs=12)
    assert (np.percentile(in_crop, 1) > 0) and (np.percentile(in_crop, 99) < 100)


@pytest.mark.slow
def test_ingest_and_align_on_demo_faces_then_align_alone_reads_the_latest_faces(project_factory):
    project = project_factory("align_demo", {"ingest.demo.count": 40, "align.contact_sheet.count": 12})
    run_kedro(project, "--pipelines=ingest,align")
    faces = pd.read_parquet(latest(project, "data/02_intermediate/faces.parquet"))
    landmarks = pd.read_parquet(latest(project, "data/03_primary/landmarks.parquet"))
    failures = pd.read_parquet(latest(project, "data/03_primary/alignment_failures.parquet"))
    assert len(faces) == len(landmarks) + len(failures) == 40
    assert len(landmarks) >= 36  # the demo is drawn so that HOG finds about 9 in 10

    # Alone, align reads the persisted faces and writes a new version of its outputs.
    run_kedro(project, "--pipelines=align")
    versions = sorted((project / "data/03_primary/landmarks.parquet").iterdir())
    assert len(versions) == 2
    again = pd.read_parquet(versions[-1] / "landmarks.parquet")
    pd.testing.assert_frame_equal(again, landmarks)

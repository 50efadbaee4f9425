"""The infer pipeline on the demo run: no leakage, counts reconcile, and the compact model learns."""


import numpy as np
import pandas as pd
import pytest

from dex_bias.models.inference import PROBABILITY_COLUMNS
from dex_bias.pipelines.infer.nodes import splits_to_predict
from tests.conftest import latest


def test_auto_splits_keep_the_trained_split_out():
    assert splits_to_predict({"trained_splits": ["train"]}, ["test", "train"], "auto") == ["test"]
    assert splits_to_predict({"source": "weights_file", "trained_splits": []}, ["test", "train"], "auto") == ["test", "train"]
    assert splits_to_predict({"trained_splits": ["train"]}, ["test", "train"], "all") == ["test", "train"]
    assert splits_to_predict({}, ["test", "train"], ["train"]) == ["train"]
    with pytest.raises(ValueError, match="auto"):
        splits_to_predict({}, ["test"], "everything")


@pytest.fixture(scope="module")
def demo_outputs(demo_run):
    return {
        "faces": pd.read_parquet(latest(demo_run, "data/02_intermediate/faces.parquet")),
        "predictions": pd.read_parquet(latest(demo_run, "data/07_model_output/predictions.parquet")),
        "failures": pd.read_csv(latest(demo_run, "data/07_model_output/inference_failures.csv")),
        "model_version": sorted((demo_run / "data/06_models/age_model.keras").iterdir())[-1].name,
    }


def test_only_test_split_faces_are_predicted_and_every_one_is_accounted_for(demo_outputs):
    faces, predictions, failures = demo_outputs["faces"], demo_outputs["predictions"], demo_outputs["failures"]
    test_ids = set(faces.loc[faces["split"] == "test", "image_id"])
    assert set(predictions["split"]) == {"test"}
    assert set(predictions["image_id"]) | set(failures["image_id"]) == test_ids
    assert not set(predictions["image_id"]) & set(failures["image_id"])
    assert set(failures["reason"]) <= {"missing_landmarks", "unreadable_image"}
    assert (predictions["model_name"] == "compact").all()
    assert (predictions["model_version"] == demo_outputs["model_version"]).all()
    np.testing.assert_allclose(predictions[PROBABILITY_COLUMNS].sum(axis=1), 1.0, atol=1e-4)
    labels = faces.set_index("image_id").loc[predictions["image_id"], ["age", "gender", "race"]]
    np.testing.assert_array_equal(predictions[["age", "gender", "race"]].to_numpy(), labels.to_numpy())


def test_compact_model_beats_the_training_mean_by_half(demo_outputs):
    faces, predictions = demo_outputs["faces"], demo_outputs["predictions"]
    training_mean = faces.loc[faces["split"] == "train", "age"].mean()
    model_mae = (predictions["predicted_age"] - predictions["age"]).abs().mean()
    mean_mae = (training_mean - predictions["age"]).abs().mean()
    assert model_mae <= 0.5 * mean_mae, f"model MAE {model_mae:.2f} vs always-the-mean MAE {mean_mae:.2f}"

"""The infer pipeline: no leakage, counts reconcile (in-process on rendered faces, and on the demo
run), and the compact model trained on the demo learns."""

import numpy as np
import pandas as pd
import pytest

from dex_bias.models.inference import PROBABILITY_COLUMNS, splits_to_predict
from dex_bias.pipelines.infer.pipeline import create_pipeline
from tests.conftest import (
    SYNCHRONOUS_DASK,
    base_parameters,
    latest,
    project_catalog,
    rendered_faces,
    run_in_process,
)


def test_auto_splits_keep_the_trained_split_out():
    assert splits_to_predict({"trained_splits": ["train"]}, ["test", "train"], "auto") == ["test"]
    assert splits_to_predict({"source": "weights_file", "trained_splits": []}, ["test", "train"], "auto") == [
        "test",
        "train",
    ]
    assert splits_to_predict({"trained_splits": ["train"]}, ["test", "train"], "all") == ["test", "train"]
    assert splits_to_predict({}, ["test", "train"], ["train"]) == ["train"]
    with pytest.raises(ValueError, match="auto"):
        splits_to_predict({}, ["test"], "everything")


def assert_only_test_faces_predicted_and_all_accounted_for(faces, predictions, failures, model_version):
    test_ids = set(faces.loc[faces["split"] == "test", "image_id"])
    assert set(predictions["split"]) == {"test"}
    assert set(predictions["image_id"]) | set(failures["image_id"]) == test_ids
    assert not set(predictions["image_id"]) & set(failures["image_id"])
    assert set(failures["reason"]) <= {"missing_landmarks", "unreadable_image"}
    assert (predictions["model_name"] == "compact").all()
    assert (predictions["model_version"] == model_version).all()
    np.testing.assert_allclose(predictions[PROBABILITY_COLUMNS].sum(axis=1), 1.0, atol=1e-4)
    labels = faces.set_index("image_id").loc[predictions["image_id"], ["age", "gender", "race"]]
    np.testing.assert_array_equal(predictions[["age", "gender", "race"]].to_numpy(), labels.to_numpy())


@pytest.fixture(scope="module")
def inferred(tmp_path_factory):
    """infer in-process on 16 rendered faces (half of them test split; one test face without
    landmarks, one whose file is gone), with a compact model trained "here" on the train split,
    read from a versioned ``age_model`` file as a run reads it."""
    import keras

    from dex_bias.models import build_model
    from dex_bias.models.weights import set_model_card

    root = tmp_path_factory.mktemp("infer")
    faces, landmarks = rendered_faces(root / "faces", 16, seed=12)
    faces["split"] = np.where(np.arange(len(faces)) % 2 == 0, "test", "train")
    tested = faces.loc[faces["split"] == "test", "image_id"].tolist()
    landmarks = landmarks[landmarks["image_id"] != tested[0]]
    (root / "faces" / tested[1]).unlink()
    keras.utils.set_random_seed(7)
    model = build_model("compact")
    set_model_card(model, {"backbone": "compact", "source": "trained_here", "trained_splits": ["train"]})
    project_catalog(root).save("age_model", model)
    run_in_process(
        create_pipeline(),
        {"faces": faces, "landmarks": landmarks},
        base_parameters(SYNCHRONOUS_DASK),
        catalog=project_catalog(root),
    )
    return root, faces, tested


def test_only_test_split_faces_are_predicted_and_every_one_is_accounted_for(inferred):
    root, faces, tested = inferred
    predictions = pd.read_parquet(latest(root, "data/07_model_output/predictions.parquet"))
    failures = pd.read_csv(latest(root, "data/07_model_output/inference_failures.csv"))
    model_version = latest(root, "data/06_models/age_model.keras").parent.name
    assert_only_test_faces_predicted_and_all_accounted_for(faces, predictions, failures, model_version)
    assert dict(zip(failures["image_id"], failures["reason"])) == {
        tested[0]: "missing_landmarks",
        tested[1]: "unreadable_image",
    }
    assert len(predictions) == len(tested) - 2


@pytest.fixture(scope="module")
def demo_outputs(demo_run):
    return {
        "faces": pd.read_parquet(latest(demo_run, "data/02_intermediate/faces.parquet")),
        "predictions": pd.read_parquet(latest(demo_run, "data/07_model_output/predictions.parquet")),
        "failures": pd.read_csv(latest(demo_run, "data/07_model_output/inference_failures.csv")),
        "model_version": sorted((demo_run / "data/06_models/age_model.keras").iterdir())[-1].name,
    }


@pytest.mark.slow
def test_demo_run_predicts_only_test_split_faces_and_accounts_for_every_one(demo_outputs):
    assert_only_test_faces_predicted_and_all_accounted_for(
        demo_outputs["faces"], demo_outputs["predictions"], demo_outputs["failures"], demo_outputs["model_version"]
    )


@pytest.mark.slow
def test_compact_model_beats_the_training_mean_by_half(demo_outputs):
    faces, predictions = demo_outputs["faces"], demo_outputs["predictions"]
    training_mean = faces.loc[faces["split"] == "train", "age"].mean()
    model_mae = (predictions["predicted_age"] - predictions["age"]).abs().mean()
    mean_mae = (training_mean - predictions["age"]).abs().mean()
    assert model_mae <= 0.5 * mean_mae, f"model MAE {model_mae:.2f} vs always-the-mean MAE {mean_mae:.2f}"

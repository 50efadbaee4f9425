"""The train pipeline: a wrong model file stops it before any image is read; what a run saves
(in-process on rendered faces, and the demo run's outputs)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version

from dex_bias.datasets import KerasModelDataset
from dex_bias.models.weights import WeightsFileError, model_card
from dex_bias.pipelines.train.pipeline import create_pipeline
from tests.conftest import base_parameters, latest, project_catalog, rendered_faces, run_in_process


def train_params(weights_file: Path):
    return base_parameters(
        {
            "train.model.source": "weights_file",
            "train.model.backbone": "compact",
            "train.model.weights_file": str(weights_file),
            "train.epochs": 1,
            "train.seed": 1,
        }
    )


@pytest.mark.parametrize("problem", ["missing", "lfs_pointer"])
def test_a_wrong_weights_file_stops_the_run_before_any_image_is_read(tmp_path, problem, monkeypatch):
    weights = tmp_path / "EfficientNetB3_224_weights.11-3.44.hdf5"
    if problem == "lfs_pointer":
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 132434532\n")
    opened = []
    # Every crop is decoded through it (dex_bias.faces.crops.read_image_reduced).
    monkeypatch.setattr("dex_bias.faces.crops.load_rgb_reduced", lambda path, *args: opened.append(path))
    faces = pd.DataFrame(
        {
            "image_id": ["30_0_0_1.jpg", "40_1_2_2.jpg"],
            "path": ["/nowhere/a.jpg", "/nowhere/b.jpg"],
            "age": [30, 40],
            "gender": [0, 1],
            "race": [0, 2],
            "split": ["train", "train"],
        }
    )
    landmarks = pd.DataFrame(
        {
            "image_id": faces["image_id"],
            **{c: 1.0 for c in ("crop_a", "crop_b", "crop_c", "crop_d", "crop_e", "crop_f")},
        }
    )
    with pytest.raises(WeightsFileError, match="EfficientNetB3_224_weights") as error:
        run_in_process(create_pipeline(), {"faces": faces, "landmarks": landmarks}, train_params(weights))
    assert ("no file at that path" if problem == "missing" else "Git LFS pointer") in str(error.value)
    assert opened == []


def assert_trained_on_the_train_split_and_recorded(project: Path, faces: pd.DataFrame) -> None:
    """What a train run saved under ``project`` (versioned model, history, learning curve) says."""
    model = KerasModelDataset(
        filepath=str(project / "data/06_models/age_model.keras"), version=Version(None, None)
    ).load()
    card = model_card(model)
    assert model.name == "compact" and card["source"] == "trained_here" and card["trained_splits"] == ["train"]
    # Every training face is a train-split face with landmarks (minus the validation slice it was split into).
    training = card["training"]
    assert training["n_train"] + training["n_validation"] == card["n_training_faces"]
    assert card["n_training_faces"] <= int((faces["split"] == "train").sum())
    history = pd.read_csv(latest(project, "data/07_model_output/training_history.csv"))
    assert list(history.columns[:5]) == ["epoch", "loss", "val_loss", "age_mae", "val_age_mae"]
    assert len(history) == training["epochs_run"] and history["val_age_mae"].min() == pytest.approx(
        training["best_val_age_mae"], rel=1e-4
    )
    assert latest(project, "data/08_reporting/learning_curve.png").stat().st_size > 10_000


def test_train_pipeline_trains_on_the_train_split_with_landmarks_and_records_it(tmp_path):
    faces, landmarks = rendered_faces(tmp_path / "faces", 24, seed=11)
    faces["split"] = np.where(np.arange(len(faces)) % 4 == 0, "test", "train")
    landmarks = landmarks.iloc[2:]  # faces 0 (test) and 1 (train): align found no face
    made = run_in_process(
        create_pipeline(),
        {"faces": faces, "landmarks": landmarks},
        base_parameters({"train.epochs": 3}),
        catalog=project_catalog(tmp_path),
    )
    assert_trained_on_the_train_split_and_recorded(tmp_path, faces)
    usable = faces.loc[(faces["split"] == "train") & faces["image_id"].isin(landmarks["image_id"]), "image_id"]
    assert sorted(made["training_faces"]["image_id"]) == sorted(usable) and len(usable) == 17
    card = model_card(
        KerasModelDataset(filepath=str(tmp_path / "data/06_models/age_model.keras"), version=Version(None, None)).load()
    )
    assert card["n_training_faces"] == len(usable) and card["training"]["epochs_run"] <= 3


@pytest.mark.slow
def test_demo_run_trains_on_the_train_split_and_records_it(demo_run):
    assert_trained_on_the_train_split_and_recorded(
        demo_run, pd.read_parquet(latest(demo_run, "data/02_intermediate/faces.parquet"))
    )

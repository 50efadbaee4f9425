"""The train pipeline: a wrong model file stops it before any image is read; the demo run's outputs."""

from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import Version
from kedro.runner import SequentialRunner

from dex_bias.datasets import KerasModelDataset
from dex_bias.models.weights import WeightsFileError, model_card
from dex_bias.pipelines.train.pipeline import create_pipeline
from tests.conftest import base_parameters, latest


def train_params(weights_file: Path):
    return base_parameters({"train.model.source": "weights_file", "train.model.backbone": "compact",
                            "train.model.weights_file": str(weights_file), "train.epochs": 1, "train.seed": 1}).train


@pytest.mark.parametrize("problem", ["missing", "lfs_pointer"])
def test_a_wrong_weights_file_stops_the_run_before_any_image_is_read(tmp_path, problem, monkeypatch):
    weights = tmp_path / "EfficientNetB3_224_weights.11-3.44.hdf5"
    if problem == "lfs_pointer":
        weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 132434532\n")
    opened = []
    monkeypatch.setattr("dex_bias.faces.crops.read_image", lambda path: opened.append(path))
    faces = pd.DataFrame({"image_id": ["30_0_0_1.jpg", "40_1_2_2.jpg"], "path": ["/nowhere/a.jpg", "/nowhere/b.jpg"],
                          "age": [30, 40], "gender": [0, 1], "race": [0, 2], "split": ["train", "train"]})
    landmarks = pd.DataFrame({"image_id": faces["image_id"], **{c: 1.0 for c in
                              ("crop_a", "crop_b", "crop_c", "crop_d", "crop_e", "crop_f")}})
    catalog = DataCatalog({
        "faces": MemoryDataset(faces), "landmarks": MemoryDataset(landmarks),
        "params:train": MemoryDataset(train_params(weights)),
        "starting_model": MemoryDataset(copy_mode="assign"),
    })
    with pytest.raises(WeightsFileError, match="EfficientNetB3_224_weights") as error:
        SequentialRunner().run(create_pipeline(), catalog)
    assert ("no file at that path" if problem == "missing" else "Git LFS pointer") in str(error.value)
    assert opened == []


def test_demo_run_trains_on_the_train_split_and_records_it(demo_run):
    model = KerasModelDataset(filepath=str(demo_run / "data/06_models/age_model.keras"), version=Version(None, None)).load()
    card = model_card(model)
    faces = pd.read_parquet(latest(demo_run, "data/02_intermediate/faces.parquet"))
    assert model.name == "compact" and card["source"] == "trained_here" and card["trained_splits"] == ["train"]
    # Every training face is a train-split face with landmarks (minus the validation slice it was split into).
    training = card["training"]
    assert training["n_train"] + training["n_validation"] == card["n_training_faces"]
    assert card["n_training_faces"] <= int((faces["split"] == "train").sum())
    history = pd.read_csv(latest(demo_run, "data/07_model_output/training_history.csv"))
    assert list(history.columns[:5]) == ["epoch", "loss", "val_loss", "age_mae", "val_age_mae"]
    assert len(history) == training["epochs_run"] and history["val_age_mae"].min() == pytest.approx(
        training["best_val_age_mae"], rel=1e-4)
    assert latest(demo_run, "data/08_reporting/learning_curve.png").stat().st_size > 10_000

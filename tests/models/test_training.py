"""DEX training: targets, validation split, freezing, history, seeded reproducibility."""

from dataclasses import replace

import keras
import numpy as np
import pytest

from dex_bias.models import build_model
from dex_bias.models.training import (
    TrainingSettings,
    age_label_distribution,
    freeze_layers,
    history_table,
    train_dex_model,
    validation_split,
)
from tests.conftest import base_parameters


def fitting(**changes) -> TrainingSettings:
    """conf/base's fitting settings (the ``train`` keys ``TrainingSettings`` has), with ``changes``."""
    return replace(TrainingSettings(**base_parameters().train.recorded()), **changes)


def test_gaussian_age_targets_are_distributions_peaked_at_the_true_age():
    targets = age_label_distribution(np.array([0, 30, 100, 116]), sigma=2.0)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    assert targets.argmax(axis=1).tolist() == [0, 30, 100, 100]  # ages above 100 fall in the last bin
    assert targets[1, 29] == pytest.approx(targets[1, 31]) and targets[1, 29] < targets[1, 30]
    one_hot = age_label_distribution(np.array([7]), sigma=0)
    assert one_hot[0, 7] == 1.0 and one_hot.sum() == 1.0


def test_validation_split_is_seeded_disjoint_and_complete():
    train, validation = validation_split(100, 0.2, seed=3)
    again_train, again_validation = validation_split(100, 0.2, seed=3)
    assert len(validation) == 20 and not set(train) & set(validation)
    assert sorted([*train, *validation]) == list(range(100))
    np.testing.assert_array_equal(validation, again_validation)
    assert not np.array_equal(validation, validation_split(100, 0.2, seed=4)[1])


def test_freezing_the_backbone_leaves_only_the_heads_trainable():
    model = build_model("compact")
    frozen = freeze_layers(model, "backbone")
    trainable = [layer.name for layer in model.layers if layer.trainable and layer.weights]
    assert trainable == ["pred_gender", "pred_age"] and frozen == len(model.layers) - 2
    with pytest.raises(ValueError, match="backbone"):
        freeze_layers(model, "some")


def test_history_uses_the_contract_names():
    table = history_table(
        {
            "loss": [3.0, 2.0],
            "val_loss": [3.5, 2.5],
            "pred_age_mae": [9.0, 8.0],
            "val_pred_age_mae": [10.0, 9.5],
            "pred_gender_accuracy": [0.5, 0.6],
        }
    )
    assert list(table.columns[:5]) == ["epoch", "loss", "val_loss", "age_mae", "val_age_mae"]
    assert table["epoch"].tolist() == [1, 2] and "gender_accuracy" in table


def _seeded_compact(seed):
    keras.utils.set_random_seed(seed)  # initial weights are a random draw too
    return build_model("compact")


def _toy_faces(count=24, seed=0):
    """Faces whose brightness encodes the age: a model can learn it in a few epochs."""
    rng = np.random.default_rng(seed)
    ages = rng.integers(5, 80, count)
    crops = np.clip(ages[:, None, None, None] * 3 + rng.normal(0, 5, (count, 64, 64, 3)), 0, 255).astype(np.uint8)
    return crops, ages, rng.integers(0, 2, count)


def test_same_seed_gives_the_same_model_and_history():
    crops, ages, genders = _toy_faces()
    settings = fitting(epochs=1, batch_size=8, patience=5, seed=11)
    first = train_dex_model(_seeded_compact(11), crops, ages, genders, settings)
    second = train_dex_model(_seeded_compact(11), crops, ages, genders, settings)
    assert list(first.history.columns[:5]) == ["epoch", "loss", "val_loss", "age_mae", "val_age_mae"]
    assert len(first.history) == 1 and first.summary["n_validation"] == 4
    np.testing.assert_allclose(first.history["loss"], second.history["loss"], rtol=1e-6)
    for a, b in zip(first.model.weights, second.model.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_zero_epochs_keeps_the_model_as_loaded():
    crops, ages, genders = _toy_faces(count=4)
    model = build_model("compact")
    before = [np.asarray(w).copy() for w in model.weights]
    result = train_dex_model(model, crops, ages, genders, fitting(epochs=0))
    assert result.history.empty and result.summary["epochs_run"] == 0
    for a, w in zip(before, result.model.weights):
        np.testing.assert_array_equal(a, np.asarray(w))

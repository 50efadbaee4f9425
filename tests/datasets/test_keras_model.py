"""KerasModelDataset: versioned .keras files in safe mode, provenance kept, a Kedro-Viz preview."""

import json

import keras
import numpy as np
import pytest
from kedro.io.core import DatasetError, Version

from dex_bias.datasets import KerasModelDataset
from dex_bias.models import build_model, make_age_function
from dex_bias.models.weights import model_card, set_model_card


def test_versioned_round_trip_keeps_weights_card_and_version(tmp_path):
    model = build_model("compact")
    set_model_card(model, {"source": "trained_here", "trained_splits": ["train"]})
    KerasModelDataset(filepath=str(tmp_path / "age_model.keras"), version=Version(None, None)).save(model)
    versions = list((tmp_path / "age_model.keras").iterdir())
    assert len(versions) == 1
    loaded = KerasModelDataset(filepath=str(tmp_path / "age_model.keras"), version=Version(None, None)).load()
    crops = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(make_age_function(loaded)(crops), make_age_function(model)(crops), rtol=1e-6)
    card = model_card(loaded)
    assert card["trained_splits"] == ["train"] and card["version"] == versions[0].name


def test_preview_summarises_backbone_and_input(tmp_path):
    dataset = KerasModelDataset(filepath=str(tmp_path / "m.keras"))
    dataset.save(build_model("compact"))
    summary = json.loads(dataset.preview())
    assert summary["backbone"] == "compact"
    assert summary["input"] == {"size": 64, "channel_order": "RGB", "scale_divisor": 255.0}
    assert summary["outputs"] == ["pred_gender", "pred_age"]


def _lambda_model_file(tmp_path):
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs, name="compact").save(path)
    return path


def test_serialized_lambda_is_refused_unless_trusted(tmp_path):
    path = _lambda_model_file(tmp_path)
    with pytest.raises(DatasetError, match="arbitrary code.*trust_unsafe: true") as error:
        KerasModelDataset(filepath=str(path)).load()
    assert str(path) in str(error.value)
    trusted = KerasModelDataset(filepath=str(path), trust_unsafe=True).load()
    assert trusted.name == "compact"


def test_missing_model_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetError, match="kedro run --pipelines=train"):
        KerasModelDataset(filepath=str(tmp_path / "nothing.keras")).load()

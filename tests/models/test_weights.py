"""Published-weights loading: exact round trips, and one clear error per wrong file."""

import numpy as np
import pytest

from dex_bias.models import build_model, make_head_function
from dex_bias.models.backbones import build_wrn_16_8
from dex_bias.models.weights import (
    WeightsFileError,
    load_hdf5_weights,
    load_model_from_config,
    model_card,
    save_hdf5_weights,
)
from tests.conftest import base_settings


def from_file(path):
    """conf/base's ``train.model``, starting from the compact model's weights in ``path``."""
    return base_settings("train.model", source="weights_file", backbone="compact", weights_file=str(path))


def _outputs(model, seed=0):
    spec_size = model.input_shape[1]
    crops = np.random.default_rng(seed).integers(0, 256, (3, spec_size, spec_size, 3), dtype=np.uint8)
    return make_head_function(model)(crops)


def _perturbed(model):
    """A model whose weights differ from a fresh build's (so a round trip can be told from a re-init)."""
    rng = np.random.default_rng(7)
    for weight in model.weights:
        if weight.dtype == "float32":
            weight.assign(np.asarray(weight) + rng.normal(0, 0.01, weight.shape).astype("float32"))
    return model


def test_round_trip_by_layer_name_restores_every_output(tmp_path):
    saved = _perturbed(build_model("compact"))
    path = tmp_path / "compact.weights.hdf5"
    save_hdf5_weights(saved, path)
    fresh = build_model("compact")
    assert load_hdf5_weights(fresh, path) == "by_name"
    for expected, got in zip(_outputs(saved), _outputs(fresh)):
        np.testing.assert_array_equal(expected, got)


def test_auto_named_layers_load_in_order_with_every_shape_checked(tmp_path):
    # Keras numbers unnamed layers per session (conv2d_3 here, conv2d_19 in the next build),
    # as in yu4u's WideResNet file: names differ, order and shapes agree.
    saved = _perturbed(build_wrn_16_8(k=1))
    path = tmp_path / "wrn.hdf5"
    save_hdf5_weights(saved, path)
    fresh = build_wrn_16_8(k=1)
    assert load_hdf5_weights(fresh, path) == "by_order"
    for expected, got in zip(_outputs(saved), _outputs(fresh)):
        np.testing.assert_array_equal(expected, got)


def test_weights_file_source_records_where_the_model_came_from(tmp_path):
    path = tmp_path / "compact.h5"
    save_hdf5_weights(_perturbed(build_model("compact")), path)
    model = load_model_from_config(from_file(path))
    card = model_card(model)
    assert card["source"] == "weights_file" and card["weights_file"] == str(path)
    assert len(card["weights_sha256"]) == 64 and card["trained_splits"] == []


@pytest.fixture(scope="module")
def other_architecture_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "wrn_k1.hdf5"
    save_hdf5_weights(build_wrn_16_8(k=1), path)
    return path


def test_another_architectures_file_says_what_was_expected_and_found(other_architecture_file):
    with pytest.raises(WeightsFileError) as error:
        load_hdf5_weights(build_model("compact"), other_architecture_file)
    message = str(error.value)
    assert str(other_architecture_file) in message
    assert "backbone 'compact'" in message and "weighted layers" in message
    assert "set `model.backbone`" in message


def test_truncated_file_is_reported_as_truncated(other_architecture_file, tmp_path):
    data = other_architecture_file.read_bytes()
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="truncated"):
        load_hdf5_weights(build_model("compact"), truncated)


def test_git_lfs_pointer_is_recognised(tmp_path):
    pointer = tmp_path / "EfficientNetB3_224_weights.11-3.44.hdf5"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123456789abcdef\nsize 132434532\n")
    with pytest.raises(WeightsFileError, match="Git LFS pointer.*git lfs pull"):
        load_model_from_config(from_file(pointer))


def test_missing_and_non_hdf5_files_are_named(tmp_path):
    with pytest.raises(WeightsFileError, match="no file at that path"):
        load_model_from_config(from_file(tmp_path / "absent.h5"))
    text = tmp_path / "notes.h5"
    text.write_text("these are not weights")
    with pytest.raises(WeightsFileError, match=r"expected an HDF5 weights file.*found \d+ bytes"):
        load_hdf5_weights(build_model("compact"), text)

"""ModelSpec preprocessing, DEX expected age, and the compiled age function."""

import numpy as np
import pytest

from dex_bias.models import (
    AGES,
    MODEL_SPECS,
    build_model,
    expected_age,
    make_age_function,
    make_head_function,
    spec_for,
)


def test_preprocess_orders_channels_and_scales_as_declared():
    batch = np.zeros((1, 224, 224, 3), np.uint8)
    batch[..., 0], batch[..., 1], batch[..., 2] = 10, 20, 255  # R, G, B
    bgr = MODEL_SPECS["efficientnet_b3"].preprocess(batch)
    assert bgr.dtype == np.float32
    assert bgr[0, 0, 0].tolist() == [255.0, 20.0, 10.0]  # BGR, 0-255 kept
    rgb = MODEL_SPECS["vgg_face"].preprocess(batch)
    np.testing.assert_allclose(rgb[0, 0, 0], [10 / 255, 20 / 255, 1.0], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODEL_SPECS))
def test_tensorflow_twin_matches_numpy_preprocessing(name):
    spec = MODEL_SPECS[name]
    batch = np.random.default_rng(1).integers(0, 256, (2, spec.input_size, spec.input_size, 3), dtype=np.uint8)
    np.testing.assert_allclose(spec.preprocess_tensor(batch).numpy(), spec.preprocess(batch), rtol=1e-6)


def test_preprocess_refuses_wrong_size_and_scaled_input_with_a_fix():
    spec = MODEL_SPECS["compact"]
    with pytest.raises(ValueError, match="64x64 crops; got 32x32.*input_size"):
        spec.preprocess(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        spec.preprocess(np.zeros((1, 64, 64, 3), np.float32))


def test_expected_age_is_the_mean_of_the_softmax():
    one_hot = np.eye(101)[[0, 37, 100]]
    np.testing.assert_allclose(expected_age(one_hot), [0, 37, 100])
    two_bins = np.zeros((1, 101))
    two_bins[0, [20, 30]] = [0.25, 0.75]
    assert expected_age(two_bins)[0] == pytest.approx(27.5)
    assert expected_age(np.full((1, 101), 1 / 101))[0] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="101"):
        expected_age(np.ones((2, 100)))


def test_spec_for_finds_a_model_by_its_backbone_name_and_names_the_known_ones():
    model = build_model("compact")
    assert model.name == "compact" and spec_for(model) is MODEL_SPECS["compact"]
    with pytest.raises(KeyError, match="known backbones"):
        spec_for("resnet50")


def test_age_function_is_the_expected_age_of_the_model_on_preprocessed_crops():
    model = build_model("compact")
    crops = np.random.default_rng(2).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    direct = model(MODEL_SPECS["compact"].preprocess(crops), training=False)[1].numpy()
    ages = make_age_function(model)(crops)
    np.testing.assert_allclose(ages, direct @ AGES, rtol=1e-5)
    # Batch composition does not change a face's age (one trace serves every batch size).
    np.testing.assert_allclose(make_age_function(model)(crops[2:3]), ages[2:3], rtol=1e-5)
    age_probs, prob_female = make_head_function(model)(crops)
    np.testing.assert_allclose(prob_female, model(MODEL_SPECS["compact"].preprocess(crops))[0].numpy()[:, 1], rtol=1e-5)
    assert age_probs.shape == (5, 101)

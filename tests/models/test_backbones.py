"""The four backbones against their published layouts: layer names, output shapes, parameter counts."""

import numpy as np
import pytest

from dex_bias.models import build_model, spec_for

#: yu4u's published EfficientNetB3_224_weights.11-3.44.hdf5 (weights + Adam state), in bytes.
YU4U_B3_FILE_BYTES = 132_434_532


def _shapes(model):
    return [tuple(output.shape) for output in model.outputs]


def test_efficientnet_b3_is_yu4us_v06_layout():
    model = build_model("efficientnet_b3")
    assert model.name == "efficientnet_b3" and model.input_shape == (None, 224, 224, 3)
    assert model.output_names == ["pred_gender", "pred_age"]
    assert _shapes(model) == [(None, 2), (None, 101)]
    names = {layer.name for layer in model.layers}
    assert {"stem_conv", "block1a_dwconv", "block7b_project_conv", "top_conv", "avg_pool"} <= names
    assert model.get_layer("pred_age").kernel.shape == (1536, 101)
    total = model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert round(total / 1e6, 2) == 10.94
    # The published checkpoint holds 4 bytes per weight plus Adam's two moments per trainable
    # weight; the rest (about 1 %) is HDF5 structure.
    payload = 4 * total + 8 * trainable
    assert 0.97 < payload / YU4U_B3_FILE_BYTES < 1.0


def test_wrn_16_8_is_yu4us_v05_layout():
    model = build_model("wrn_16_8")
    assert model.input_shape == (None, 64, 64, 3) and _shapes(model) == [(None, 2), (None, 101)]
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    # A stem conv, then per stage (n = (16 - 4) / 6 = 2 blocks) 2 x 2 convs and one projection shortcut.
    assert len(convs) == 1 + 3 * 5
    assert sorted({c.filters for c in convs}) == [16, 16 * 8, 32 * 8, 64 * 8]
    assert all(not c.use_bias for c in convs)
    # Heads see the 16x16x512 map flattened (8x8 pooling, stride 1, same padding), with no bias.
    assert model.get_layer("pred_age").kernel.shape == (16 * 16 * 512, 101)
    assert model.get_layer("pred_age").bias is None
    assert model.count_params() == 24_463_856


def test_vgg_face_is_serengils_age_model_with_one_output():
    model = build_model("vgg_face")
    assert model.input_shape == (None, 224, 224, 3) and _shapes(model) == [(None, 101)]
    assert model.get_layer("fc6").kernel.shape == (7, 7, 512, 4096)
    assert model.get_layer("predictions").kernel.shape == (1, 1, 4096, 101)
    assert model.count_params() == 134_674_341  # 16 weighted layers, about 539 MB of float32
    assert not spec_for(model).has_gender_head


def test_compact_is_small_and_two_headed():
    model = build_model("compact")
    assert model.input_shape == (None, 64, 64, 3) and _shapes(model) == [(None, 2), (None, 101)]
    assert model.count_params() < 500_000


def test_unknown_backbone_names_the_choices():
    with pytest.raises(KeyError, match="compact"):
        build_model("resnet")

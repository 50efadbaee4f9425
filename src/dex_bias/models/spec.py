"""One declaration per age model: input size, channel order, scaling; and DEX's expected age.

DEX (Rothe, Timofte & Van Gool, "Deep EXpectation of apparent age from a single image",
ICCV-W 2015; IJCV 2018) casts age estimation as classification over 101 one-year bins
(0..100) and reads the age as the expected value of the softmax:
``E[age] = sum_k k * p_k``. Every backbone of :mod:`dex_bias.models` outputs that 101-way
softmax under the layer name ``pred_age`` (and, where it has one, a 2-way gender softmax
``pred_gender``, column 1 = female, UTKFace's code 1).

A :class:`ModelSpec` is the single place that says what pixels a model expects. Training,
inference and explanation all call :meth:`ModelSpec.preprocess` (or the TensorFlow twin used
inside :func:`make_age_function`) on RGB ``uint8`` crops from :func:`dex_bias.faces.cut_crops`.
A Keras model's ``name`` is its backbone name, so a loaded ``.keras`` file finds its spec
through :func:`spec_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

#: The 101 age bins of DEX, in years.
AGES: np.ndarray = np.arange(101)
#: Layer names of the two heads (yu4u's age-gender-estimation names).
AGE_OUTPUT = "pred_age"
GENDER_OUTPUT = "pred_gender"


@dataclass(frozen=True)
class ModelSpec:
    """What one backbone expects as input, declared once.

    Attributes
    ----------
    name : backbone name; also the Keras model's ``name``.
    input_size : side of the square input crop, pixels.
    channel_order : ``"RGB"`` or ``"BGR"`` (OpenCV-trained models such as yu4u's take BGR).
    scale : divisor applied to 0-255 pixel values (``255.0`` gives 0-1 inputs; ``1.0`` keeps 0-255).
    has_gender_head : whether the model has the ``pred_gender`` output.
    description : the published source of the layout.
    weights_note : what a published weights file of this layout looks like.
    """

    name: str
    input_size: int
    channel_order: Literal["RGB", "BGR"]
    scale: float
    has_gender_head: bool = True
    description: str = ""
    weights_note: str = ""

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"ModelSpec {self.name}: channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.scale not in (1.0, 255.0):
            raise ValueError(f"ModelSpec {self.name}: scale must be 1.0 or 255.0, got {self.scale!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.input_size, self.input_size, 3)

    def check_batch(self, batch_rgb_uint8: np.ndarray) -> np.ndarray:
        """Return the batch as ``uint8`` ``(N, S, S, 3)``; raise a clear error otherwise."""
        batch = np.asarray(batch_rgb_uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(
                f"model {self.name!r} takes RGB crops shaped (N, {self.input_size}, {self.input_size}, 3); "
                f"got an array shaped {batch.shape}"
            )
        if batch.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(
                f"model {self.name!r} takes {self.input_size}x{self.input_size} crops; got "
                f"{batch.shape[1]}x{batch.shape[2]}. Cut crops at spec.input_size "
                f"(dex_bias.faces.cut_crops(..., size=spec.input_size))."
            )
        if batch.dtype != np.uint8:
            raise ValueError(
                f"model {self.name!r} takes uint8 RGB crops (0-255); got dtype {batch.dtype}. "
                "Pass the crops as decoded, before any scaling: the spec applies the model's own scaling."
            )
        return batch

    def preprocess(self, batch_rgb_uint8: np.ndarray) -> np.ndarray:
        """RGB ``uint8`` crops ``(N, S, S, 3)`` -> the model's input, ``float32`` ``(N, S, S, 3)``.

        Reorders channels to :attr:`channel_order` and divides by :attr:`scale`.
        """
        batch = self.check_batch(batch_rgb_uint8).astype(np.float32)
        if self.channel_order == "BGR":
            batch = batch[..., ::-1]
        if self.scale != 1.0:
            batch /= np.float32(self.scale)
        return np.ascontiguousarray(batch)

    def preprocess_tensor(self, batch_rgb_uint8):
        """TensorFlow twin of :meth:`preprocess` (same arithmetic), for use inside ``tf.function``."""
        import tensorflow as tf

        batch = tf.cast(batch_rgb_uint8, tf.float32)
        if self.channel_order == "BGR":
            batch = tf.reverse(batch, axis=[-1])
        if self.scale != 1.0:
            batch = batch / self.scale
        return batch


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="compact",
            input_size=64,
            channel_order="RGB",
            scale=255.0,
            description="dex_bias's small CNN (4 conv blocks, global average pooling), trained here",
            weights_note="a .keras or .weights.h5 file saved by this project",
        ),
        ModelSpec(
            name="efficientnet_b3",
            input_size=224,
            channel_order="BGR",
            scale=1.0,
            description=(
                "yu4u/age-gender-estimation v0.6: keras.applications.EfficientNetB3(include_top=False, "
                "pooling='avg') + Dense(2, softmax, 'pred_gender') + Dense(101, softmax, 'pred_age'); "
                "BGR 0-255 (EfficientNet's own Rescaling/Normalization layers are inside the model)"
            ),
            weights_note="EfficientNetB3_224_weights.11-3.44.hdf5 (132,434,532 bytes: weights + Adam state)",
        ),
        ModelSpec(
            name="wrn_16_8",
            input_size=64,
            channel_order="BGR",
            scale=1.0,
            description="yu4u/age-gender-estimation v0.5: WideResNet depth 16, width 8, 64 px, BGR 0-255",
            weights_note="weights.28-3.73.hdf5 (v0.5 release)",
        ),
        ModelSpec(
            name="vgg_face",
            input_size=224,
            channel_order="RGB",
            scale=255.0,
            has_gender_head=False,
            description=(
                "serengil/deepface age model: VGG-Face conv net, Conv2D(101, 1x1) on fc7's dropout, "
                "Flatten, Softmax; RGB / 255; age head only (serengil's gender model is a separate network)"
            ),
            weights_note="age_model_weights.h5 (about 539 MB)",
        ),
    )
}


def spec_for(model_or_name) -> ModelSpec:
    """The :class:`ModelSpec` of a backbone name or of a Keras model (keyed by ``model.name``)."""
    name = model_or_name if isinstance(model_or_name, str) else getattr(model_or_name, "name", None)
    if name not in MODEL_SPECS:
        raise KeyError(
            f"no ModelSpec for model name {name!r}; known backbones: {sorted(MODEL_SPECS)}. "
            "A model built by dex_bias.models.build_model carries its backbone as its name; "
            "rename a foreign model (model.name = '<backbone>') or add a ModelSpec for it."
        )
    return MODEL_SPECS[name]


def expected_age(probs: np.ndarray) -> np.ndarray:
    """DEX expected age ``sum_k k * p_k`` of ``(N, 101)`` softmax rows -> ``(N,)`` years, float."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != AGES.size:
        raise ValueError(f"expected_age takes (N, {AGES.size}) age probabilities; got shape {probs.shape}")
    return probs @ AGES.astype(np.float64)


def output_index(model, output_name: str) -> int | None:
    """Position of the output layer ``output_name`` among ``model``'s outputs (``None`` if absent)."""
    names = list(getattr(model, "output_names", None) or [])
    if not names:
        outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
        names = [t._keras_history[0].name for t in outputs]
    return names.index(output_name) if output_name in names else None


def make_head_function(model) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """Compile ``uint8 RGB (N, S, S, 3) -> (age_probs (N, 101), prob_female (N,) or None)``.

    Preprocessing (the spec's) and the forward pass run in one ``tf.function`` traced once for
    any batch size (``input_signature`` with a free batch axis), calling ``model(x,
    training=False)`` directly: ``model.predict`` would rebuild a data pipeline per call.
    """
    import tensorflow as tf

    spec = spec_for(model)
    age_at = output_index(model, AGE_OUTPUT)
    gender_at = output_index(model, GENDER_OUTPUT)
    single_output = not isinstance(model.outputs, (list, tuple)) or len(model.outputs) == 1
    if age_at is None and not single_output:
        raise ValueError(f"model {model.name!r} has no output layer named {AGE_OUTPUT!r}: {model.output_names}")

    @tf.function(input_signature=[tf.TensorSpec([None, spec.input_size, spec.input_size, 3], tf.uint8)],
                 reduce_retracing=True)
    def forward(batch):
        outputs = model(spec.preprocess_tensor(batch), training=False)
        if single_output:
            outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            return outputs, tf.zeros([0])
        age = outputs[age_at]
        female = outputs[gender_at][:, 1] if gender_at is not None else tf.zeros([0])
        return age, female

    def heads(batch_rgb_uint8: np.ndarray):
        batch = spec.check_batch(batch_rgb_uint8)
        age, female = forward(tf.constant(batch))
        female = female.numpy() if gender_at is not None and not single_output else None
        return age.numpy(), female

    return heads


def make_age_function(model) -> Callable[[np.ndarray], np.ndarray]:
    """Compile ``uint8 RGB crops (N, S, S, 3) -> expected age (N,)`` years for ``model``.

    Applies the model's :class:`ModelSpec` preprocessing and a ``tf.function``-compiled
    ``model(x, training=False)``; the expected age is DEX's ``sum_k k * p_k``.
    """
    heads = make_head_function(model)

    def age_function(batch_rgb_uint8: np.ndarray) -> np.ndarray:
        age_probs, _ = heads(batch_rgb_uint8)
        return expected_age(age_probs)

    return age_function

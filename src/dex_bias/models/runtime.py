"""Run a declared age model, Keras or ONNX, on uint8 RGB crops: one interface for infer and explain.

An :class:`AgeEstimator` is a :class:`~dex_bias.models.spec.ModelSpec` (the declaration) plus
the networks that run it:

- :class:`KerasNetwork`: a Keras model called as ``model(x, training=False)`` inside one
  ``tf.function`` traced once for any batch size, the declared preprocessing inside it;
- :class:`OnnxNetwork`: an ``onnxruntime.InferenceSession`` on the CPU, whose signature (input
  shape, output names, class count) is checked against the declaration when it is opened.

``AgeEstimator.predict`` takes one crop batch per declared input (:attr:`AgeEstimator.views`:
the age network's, then a separate gender network's where the model has one, e.g. dlib's
32 px gender classifier) and returns the age output, the expected age in years and P(female).
``AgeEstimator.age_function`` is the scalar function LIME explains.

:func:`load_estimator` opens a declaration's file (checking its checksum before anything is
read), :func:`as_estimator` wraps a Keras model trained here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dex_bias.models.spec import DeclarationError, InputSpec, ModelSpec, output_index, spec_for

logger = logging.getLogger(__name__)

#: Attribute under which a Keras model caches its estimator (one trace per model object).
ESTIMATOR_ATTRIBUTE = "_dex_bias_estimator"


class HeadOutputs(NamedTuple):
    """What a model says of a batch: ``age_output`` (N, K) class probabilities (or (N, 1) years for
    a regression model), ``expected_age`` (N,) years, ``prob_female`` (N,) or ``None``."""

    age_output: np.ndarray
    expected_age: np.ndarray
    prob_female: np.ndarray | None


class KerasNetwork:
    """A Keras model compiled once: uint8 RGB NHWC crops -> ``(age output, gender output or None)``."""

    def __init__(self, model, spec: ModelSpec):
        import tensorflow as tf

        self.model = model
        names = list(getattr(model, "output_names", None) or [])
        single = not isinstance(model.outputs, (list, tuple)) or len(model.outputs) == 1
        age_at = output_index(model, spec.age_output) if spec.age_output else None
        if age_at is None and not single:
            raise DeclarationError(
                spec.name,
                f"the Keras model has outputs {names}, none named {spec.age_output!r}",
                "set `age.output` to the age output's name",
            )
        gender_at = None
        if spec.gender is not None and spec.gender.file is None and not single:
            gender_at = output_index(model, spec.gender.output) if spec.gender.output else None
            if gender_at is None:
                raise DeclarationError(
                    spec.name,
                    f"the Keras model has outputs {names}, none named {spec.gender.output!r}",
                    "set `gender.output`, or `gender: null` for a model without one",
                )
        size = spec.input.size

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)], reduce_retracing=True)
        def forward(batch):
            outputs = model(spec.input.preprocess_tensor(batch), training=False)
            if single:
                age = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
                return age, tf.zeros([0, 2])
            gender = outputs[gender_at] if gender_at is not None else tf.zeros([0, 2])
            return outputs[age_at if age_at is not None else 0], gender

        self._forward = forward
        self._has_gender = gender_at is not None

    def __call__(self, batch_rgb_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import tensorflow as tf

        age, gender = self._forward(tf.constant(batch_rgb_uint8))
        return age.numpy(), (gender.numpy() if self._has_gender else None)


class OnnxNetwork:
    """An onnxruntime session (CPU) checked against its declared input and outputs.

    ``outputs``: the output names to return, in order (``None`` where the graph's only output is
    meant); ``columns``: the class count each should have (``None``: not checked).
    """

    def __init__(
        self,
        path: str | Path,
        spec: InputSpec,
        outputs: Sequence[str | None],
        columns: Sequence[int | None],
        *,
        model: str,
        threads: int | None = None,
    ):
        import onnxruntime as ort

        from dex_bias.models.weights import WeightsFileError

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise WeightsFileError(
                self.path,
                f"an ONNX graph for model {model!r}",
                f"a file onnxruntime cannot open ({type(exc).__name__}: {exc})",
                "check the declaration's `file` (and its checksum)",
            ) from exc
        inputs = self.session.get_inputs()
        graph_outputs = {o.name: o for o in self.session.get_outputs()}
        expected_input = f"input {spec.name or '<the only one>'} shaped [N, {', '.join(map(str, spec.shape))}] float32"
        if spec.name is None and len(inputs) != 1:
            raise WeightsFileError(
                self.path,
                expected_input,
                f"{len(inputs)} inputs {[i.name for i in inputs]}",
                "name the image input in `input.name`",
            )
        matching = [i for i in inputs if spec.name in (None, i.name)]
        if not matching:
            raise WeightsFileError(self.path, expected_input, f"inputs {[i.name for i in inputs]}", "fix `input.name`")
        graph_input = matching[0]
        found_shape = list(graph_input.shape)
        # Symbolic dimensions (a free batch, or a free side) accept the declared value.
        if len(found_shape) != 4 or any(
            isinstance(found, int) and found != declared for found, declared in zip(found_shape[1:], spec.shape)
        ):
            raise WeightsFileError(
                self.path,
                expected_input,
                f"input {graph_input.name!r} shaped {found_shape} ({graph_input.type})",
                "fix `input.size` and `input.layout` (NCHW: [N, 3, S, S]; NHWC: [N, S, S, 3])",
            )
        if graph_input.type != "tensor(float)":
            raise WeightsFileError(
                self.path, expected_input, f"input type {graph_input.type}", "dex_bias feeds float32 tensors"
            )
        self.input_name = graph_input.name
        self.output_names: list[str] = []
        for name, count in zip(outputs, columns):
            if name is None:
                if len(graph_outputs) != 1:
                    raise WeightsFileError(
                        self.path,
                        "one output, or an output named in the declaration",
                        f"outputs {sorted(graph_outputs)}",
                        "set `age.output` / `gender.output`",
                    )
                name = next(iter(graph_outputs))
            if name not in graph_outputs:
                raise WeightsFileError(
                    self.path,
                    f"an output named {name!r}",
                    f"outputs {sorted(graph_outputs)}",
                    "fix the declaration's output name",
                )
            shape = list(graph_outputs[name].shape)
            if count is not None and (len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != count)):
                raise WeightsFileError(
                    self.path,
                    f"output {name!r} shaped [N, {count}] (one column per declared class)",
                    f"output {name!r} shaped {shape}",
                    "fix `age.classes` (or the gender output)",
                )
            self.output_names.append(name)
        self.spec = spec
        self.model = model

    def __call__(self, batch_rgb_uint8: np.ndarray) -> list[np.ndarray]:
        tensor = self.spec.preprocess(batch_rgb_uint8, self.model)
        return self.session.run(self.output_names, {self.input_name: tensor})


@dataclass
class AgeEstimator:
    """A declared model ready to run (see the module docstring).

    ``card``: provenance (source, file, SHA-256, version, trained splits) carried into predictions.
    ``keras_model``: the Keras object where the model is one (training and saving need it).
    """

    spec: ModelSpec
    age_network: Callable
    gender_network: Callable | None = None
    card: dict[str, Any] | None = None
    keras_model: Any = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> str:
        card = self.card or {}
        return str(
            card.get("version") or str(card.get("weights_sha256") or self.spec.sha256 or "")[:12] or "unversioned"
        )

    @property
    def views(self) -> tuple[InputSpec, ...]:
        """The inputs to cut crops for, in the order :meth:`predict` takes them."""
        gender = self.spec.gender
        if gender is not None and gender.file is not None and self.gender_network is not None:
            return (self.spec.input, gender.input)
        return (self.spec.input,)

    def predict(self, crops: Sequence[np.ndarray]) -> HeadOutputs:
        """One crop batch per view (uint8 RGB ``(N, S, S, 3)``) -> :class:`HeadOutputs`."""
        if len(crops) != len(self.views):
            raise ValueError(
                f"model {self.name!r} takes {len(self.views)} crop batch(es), one per input; got {len(crops)}"
            )
        age_batch = self.spec.check_batch(crops[0])
        if isinstance(self.age_network, KerasNetwork):
            age, gender = self.age_network(age_batch)
        else:
            results = self.age_network(age_batch)
            age, gender = results[0], (results[1] if len(results) > 1 else None)
        if self.gender_network is not None:
            gender = self.gender_network(crops[1])[0]
        prob_female = None
        if gender is not None and self.spec.gender is not None and len(gender):
            prob_female = np.asarray(gender, dtype=np.float64)[:, self.spec.gender.female_column]
        age = np.asarray(age)
        return HeadOutputs(age, self.spec.expected_age(age), prob_female)

    def probability_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """``uint8 RGB crops of the age input -> class probabilities (N, K)`` (what the article's LIME explained)."""
        network, spec = self.age_network, self.spec
        if spec.class_ages is None:
            raise ValueError(f"model {self.name!r} has a regression output: no class probability to explain")

        def probability_function(batch_rgb_uint8: np.ndarray) -> np.ndarray:
            return np.asarray(network(spec.check_batch(batch_rgb_uint8))[0], dtype=np.float64)

        return probability_function

    def age_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """``uint8 RGB crops of the age input (N, S, S, 3) -> expected age (N,)`` years (what LIME explains)."""
        network, spec = self.age_network, self.spec

        def age_function(batch_rgb_uint8: np.ndarray) -> np.ndarray:
            batch = spec.check_batch(batch_rgb_uint8)
            output = network(batch)[0]
            return spec.expected_age(np.asarray(output))

        return age_function


def as_estimator(model) -> AgeEstimator:
    """An :class:`AgeEstimator` for an estimator (returned as is) or a Keras model of a known layout.

    The Keras model's estimator is cached on it, so its forward pass is traced once.
    """
    if isinstance(model, AgeEstimator):
        return model
    from dex_bias.models.weights import model_card

    card = model_card(model)
    cached = getattr(model, ESTIMATOR_ATTRIBUTE, None)
    if cached is not None and cached.card == card:  # a card changed since (training) may change the spec
        return cached
    spec = spec_for(model)
    estimator = AgeEstimator(spec, KerasNetwork(model, spec), card=card, keras_model=model)
    try:
        setattr(model, ESTIMATOR_ATTRIBUTE, estimator)
    except AttributeError:  # pragma: no cover - a model that refuses attributes is simply not cached
        pass
    return estimator


def load_estimator(
    spec: ModelSpec, *, root: str | Path | None = None, threads: int | None = None, trust_unsafe: bool = False
) -> AgeEstimator:
    """Open a declaration's file(s) and return the estimator; nothing about images is read.

    Checks, in order, each raising :class:`~dex_bias.models.weights.WeightsFileError` or
    :class:`~dex_bias.models.spec.DeclarationError` naming the file, what was expected and what
    was found: the file exists (else: the command that fetches it), its SHA-256 equals the
    declared one, it opens as the declared format, and its signature (input shape, output
    names, class count) is the declared one.
    """
    from dex_bias.models.weights import build_for_weights, load_keras_model, resolve_model_file, verify_checksum

    if not spec.file:
        raise DeclarationError(spec.name, "no `file`: a declared model needs the file it runs")
    path = resolve_model_file(spec.file, root=root, model=spec)
    sha = verify_checksum(path, spec.sha256, model=spec)
    card = {
        "model": spec.name,
        "source": "declared",
        "weights_file": str(path),
        "weights_sha256": sha,
        "version": sha[:12],
        "trained_splits": [],
        **{k: str(v) for k, v in spec.provenance.items()},
    }
    n_classes = len(spec.class_ages) if spec.class_ages is not None else 1
    if spec.format == "onnx":
        outputs: list[str | None] = [spec.age_output]
        columns: list[int | None] = [n_classes]
        if spec.gender is not None and spec.gender.file is None:
            outputs.append(spec.gender.output)
            columns.append(2)
        age_network = OnnxNetwork(path, spec.input, outputs, columns, model=spec.name, threads=threads)
        gender_network = None
        if spec.gender is not None and spec.gender.file is not None:
            gender_path = resolve_model_file(spec.gender.file, root=root, model=spec)
            card["gender_sha256"] = verify_checksum(gender_path, spec.gender.sha256, model=spec)
            card["gender_file"] = str(gender_path)
            gender_network = OnnxNetwork(
                gender_path,
                spec.gender.input,
                [spec.gender.output],
                [2],
                model=f"{spec.name} (gender)",
                threads=threads,
            )
        logger.info(
            "Opened %s (ONNX %s, sha256 %s…)%s.",
            spec.name,
            path,
            sha[:12],
            f" with its gender network {spec.gender.file}" if gender_network else "",
        )
        return AgeEstimator(spec, age_network, gender_network, card=card)
    if str(path).endswith(".keras"):
        model = load_keras_model(path, trust_unsafe=trust_unsafe)
        match = "keras_file"
    else:
        model, match = build_for_weights(spec, path)
    card["weights_match"] = match
    logger.info(
        "Opened %s (Keras %s into %s, %s, sha256 %s…).", spec.name, path, spec.backbone or model.name, match, sha[:12]
    )
    return AgeEstimator(spec, KerasNetwork(model, spec), card=card, keras_model=model)

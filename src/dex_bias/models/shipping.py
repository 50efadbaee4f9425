"""An age model sent to Dask workers once, and found there by key: :class:`ModelRef` and its preload.

Tasks do not carry a model (an age model is MBs to hundreds of MBs); they carry a
:class:`ModelRef`, a key and a name. :func:`prepare_model` makes the ref and the
:class:`~dex_bias.fanout.Preload` that opens the model once on each worker:

- a *declared* model (a declaration plus its file: ONNX, or Keras weights) is re-opened on the
  worker from its picklable :class:`~dex_bias.models.spec.ModelSpec` and the file's path, checked
  again against its SHA-256 there (so a worker with another file, or none, fails clearly);
- a Keras model made in this run (the ``age_model`` the train pipeline returns) travels as the
  bytes of a ``.keras`` archive, with its provenance card, inside the worker plugin.

The key is a fingerprint of what the model computes: for a declared model its declaration and the
checksum of its file(s); for a Keras model its layout, configuration and every weight. The same
model gives the same key in every run (resumed chunks are found again); a model with one weight
changed gives another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dex_bias.fanout import Preload, fingerprint, state
from dex_bias.models.runtime import AgeEstimator, as_estimator


@dataclass(frozen=True)
class ModelRef:
    """A model loaded on every worker under ``key`` (see the module docstring). ``fingerprint``
    says what it computes (resumable chunks are keyed by it); ``name`` and ``version`` are what
    predictions record."""

    key: str
    fingerprint: str
    name: str
    version: str

    def estimator(self) -> AgeEstimator:
        """The :class:`AgeEstimator` loaded in this process under the key."""
        return state.get(self.key, f"age model {self.name} (version {self.version})")


def keras_fingerprint(model, spec) -> str:
    """BLAKE2b of a Keras model's layout name, configuration (JSON), declaration and every weight's bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(model.name).encode())
    digest.update(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    digest.update(fingerprint(dataclasses.asdict(spec)).encode())
    for weight in model.weights:
        array = np.ascontiguousarray(np.asarray(weight))
        digest.update(f"{weight.path}:{array.dtype}:{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def declared_fingerprint(estimator: AgeEstimator) -> str:
    """A declared model's fingerprint: its declaration (without file paths) and its files' SHA-256."""
    spec = estimator.spec
    declaration = dataclasses.asdict(dataclasses.replace(spec, file=None))
    if spec.gender is not None:
        declaration["gender"]["file"] = None
    card = estimator.card or {}
    return fingerprint(declaration, card.get("weights_sha256"), card.get("gender_sha256"))


def keras_archive(model) -> bytes:
    """The bytes of ``model`` saved as a ``.keras`` archive."""
    with tempfile.TemporaryDirectory(prefix="dex_bias_ship_") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def open_keras_archive(archive: bytes, card: dict[str, Any], threads: int | None = None) -> AgeEstimator:
    """On a worker: the estimator of a model sent as ``.keras`` bytes (``threads`` is unused: TensorFlow's
    threads are set per worker process)."""
    from dex_bias.models.weights import load_keras_model, set_model_card

    with tempfile.TemporaryDirectory(prefix="dex_bias_ship_") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(archive)
        model = load_keras_model(path)
    set_model_card(model, card)
    return as_estimator(model)


def open_declared(spec, root: str, threads: int | None = None) -> AgeEstimator:
    """On a worker: open a declared model's file(s) again (checksum and signature checked there too)."""
    from dex_bias.models.runtime import load_estimator

    return load_estimator(spec, root=root, threads=threads)


def _files_as_opened(estimator: AgeEstimator):
    """The declaration with relative file paths replaced by the files this process opened (a worker's
    working directory is not the project's); ``package:`` files stay (found in the worker's packages)."""
    from dex_bias.models.weights import PACKAGE_PREFIX

    spec, card = estimator.spec, estimator.card or {}

    def opened(reference, found):
        if reference is None or found is None or str(reference).startswith(PACKAGE_PREFIX):
            return reference
        return str(found)

    spec = dataclasses.replace(spec, file=opened(spec.file, card.get("weights_file")))
    if spec.gender is not None and spec.gender.file is not None:
        spec = dataclasses.replace(
            spec, gender=dataclasses.replace(spec.gender, file=opened(spec.gender.file, card.get("gender_file")))
        )
    return spec


def _plain(value: Any) -> Any:
    """Plain dicts, lists and scalars (a card kept on a Keras model holds Keras's tracked containers,
    which do not unpickle outside the model)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def prepare_model(model, *, root: str | Path | None = None) -> tuple[ModelRef, Preload]:
    """The :class:`ModelRef` tasks carry and the :class:`~dex_bias.fanout.Preload` that loads the model.

    ``model``: an :class:`AgeEstimator` (a declared model) or a Keras model of a known layout.
    ``root``: where a declared model's relative file paths start (default: the working directory).
    """
    estimator = as_estimator(model)
    card = _plain(estimator.card or {})
    if estimator.spec.file is not None:  # a declaration with its file (load_estimator opened it)
        key = declared_fingerprint(estimator)
        loader = partial(open_declared, _files_as_opened(estimator), str(Path(root or Path.cwd()).resolve()))
        what = f"age model {estimator.name} (declared, {card.get('weights_file', estimator.spec.file)})"
    else:
        if estimator.keras_model is None:
            raise TypeError(
                f"model {estimator.name!r} is neither declared nor a Keras model: it cannot be sent to Dask workers"
            )
        key = keras_fingerprint(estimator.keras_model, estimator.spec)
        loader = partial(open_keras_archive, keras_archive(estimator.keras_model), card)
        what = f"age model {estimator.name} (Keras, version {estimator.version})"
    ref = ModelRef(key=f"model-{key}", fingerprint=key, name=estimator.name, version=estimator.version)
    return ref, Preload(key=ref.key, loader=loader, what=what, local=estimator)

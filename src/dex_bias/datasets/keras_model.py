"""``KerasModelDataset``: a versioned Kedro dataset for Keras 3 ``.keras`` model files.

- Loads in Keras safe mode: a file holding a serialized Python ``Lambda`` (arbitrary code) is
  refused with a clear error unless the catalog entry sets ``trust_unsafe: true``.
- Keeps the model's provenance card (``model.dex_bias_card``: backbone, source, weights file
  SHA-256, splits it was trained on) in the ``.keras`` archive as ``dex_bias.json``, beside
  Keras's own entries (Keras ignores it), and adds the loaded ``version`` to it.
- ``preview()`` gives Kedro-Viz a JSON summary (backbone, parameters, input spec, outputs, card).

Catalog::

    age_model:
      type: dex_bias.datasets.KerasModelDataset
      filepath: data/06_models/age_model.keras
      versioned: true
      trust_unsafe: false
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str, get_protocol_and_path

try:  # kedro-datasets' preview type, where Kedro-Viz looks for it
    from kedro_datasets._typing import JSONPreview
except ImportError:  # pragma: no cover - kedro-datasets is a pinned dependency
    JSONPreview = str  # type: ignore[misc,assignment]

CARD_ENTRY = "dex_bias.json"


class KerasModelDataset(AbstractVersionedDataset[Any, Any]):
    """Save and load a Keras 3 model as a ``.keras`` file, versioned, in safe mode.

    Args:
        filepath: path of the ``.keras`` file (any fsspec protocol).
        trust_unsafe: load files that carry serialized Python code (``safe_mode=False``). Only
            for files from a source you trust.
        version: Kedro's load/save version.
        credentials, fs_args: passed to fsspec.
        metadata: free-form (Kedro-Viz reads ``kedro-viz.layer``).
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str,
        trust_unsafe: bool = False,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        _fs_args = deepcopy(fs_args) or {}
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **_fs_args)
        self._trust_unsafe = bool(trust_unsafe)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path), version=version, exists_function=self._fs.exists, glob_function=self._fs.glob
        )

    def _version_of(self, load_path: PurePosixPath) -> str | None:
        # A versioned file lives at <filepath>/<version>/<name>: the folder name is the stamp.
        return load_path.parent.name if self._version is not None else None

    def load(self) -> Any:
        from dex_bias.models.weights import WeightsFileError, load_keras_model, set_model_card

        load_path = self._get_load_path()
        remote = get_filepath_str(load_path, self._protocol)
        with tempfile.TemporaryDirectory(prefix="dex_bias_keras_") as tempdir:
            local = Path(tempdir) / "model.keras"
            try:
                self._fs.get(remote, str(local))
            except FileNotFoundError as exc:
                raise DatasetError(
                    f"no Keras model file at {remote}: run `kedro run --pipelines=train` to make one"
                ) from exc
            try:
                model = load_keras_model(local, trust_unsafe=self._trust_unsafe)
            except WeightsFileError as exc:
                raise DatasetError(str(exc).replace(str(local), remote)) from exc
            card = _read_card(local)
        card["version"] = self._version_of(load_path)
        card.setdefault("backbone", model.name)
        set_model_card(model, card)
        return model

    def save(self, data: Any) -> None:
        from dex_bias.models.weights import model_card

        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="dex_bias_keras_") as tempdir:
            local = Path(tempdir) / "model.keras"
            data.save(local)
            card = {key: value for key, value in model_card(data).items() if key != "version"}
            with zipfile.ZipFile(local, "a") as archive:
                archive.writestr(CARD_ENTRY, json.dumps(_plain(card), indent=2, sort_keys=True))
            self._fs.put(str(local), save_path)
        self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "trust_unsafe": self._trust_unsafe,
            "version": self._version,
        }

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def preview(self) -> JSONPreview:
        """A JSON summary for Kedro-Viz: backbone, parameter counts, input spec, outputs, provenance.

        Read from the archive's ``config.json`` and card, without building the model.
        """
        remote = get_filepath_str(self._get_load_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="dex_bias_keras_") as tempdir:
            local = Path(tempdir) / "model.keras"
            self._fs.get(remote, str(local))
            summary = summarise_keras_file(local)
        return JSONPreview(json.dumps(summary, indent=2, sort_keys=True))


def _plain(value: Any) -> Any:
    """Turn Keras's tracked containers and numpy scalars into JSON-able Python values."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def _read_card(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        if CARD_ENTRY not in archive.namelist():
            return {}
        return json.loads(archive.read(CARD_ENTRY))


def summarise_keras_file(path: str | Path) -> dict[str, Any]:
    """Summary of a ``.keras`` file without loading its weights: name, layers, input spec, card."""
    from dex_bias.models.spec import MODEL_SPECS

    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        card = json.loads(archive.read(CARD_ENTRY)) if CARD_ENTRY in archive.namelist() else {}
    inner = config.get("config", {})
    name = inner.get("name")
    spec = MODEL_SPECS.get(name)
    layers = inner.get("layers", [])
    summary = {
        "backbone": name,
        "file_bytes": path.stat().st_size,
        "layers": len(layers),
        "outputs": [
            layer["config"]["name"]
            for layer in layers
            if layer.get("config", {}).get("name") in ("pred_age", "pred_gender")
        ],
        "card": card,
    }
    if spec is not None:
        summary["input"] = {"size": spec.input_size, "channel_order": spec.channel_order, "scale_divisor": spec.scale}
    return summary

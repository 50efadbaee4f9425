"""``DeclaredModelDataset``: a declared age model (a declaration plus its file), read-only.

Its ``load()`` gives an :class:`~dex_bias.models.runtime.AgeEstimator` (Keras or ONNX) for the
model key it was made for; the declaration comes from the registry or ``models.declarations``
(:mod:`dex_bias.model_audit`), or is given inline. Opening the file checks it first (it exists,
its SHA-256 is the declared one, its signature is the declared one); the opened estimator is kept,
so the run opens each file once. Matched per model by the factory ``"{model}.age_model"``::

    "{model}.age_model":
      type: dex_bias.datasets.DeclaredModelDataset
      model: "{model}"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

try:
    from kedro_datasets._typing import JSONPreview
except ImportError:  # pragma: no cover - kedro-datasets is a pinned dependency
    JSONPreview = str  # type: ignore[misc,assignment]


class DeclaredModelDataset(AbstractDataset[None, Any]):
    """A declared model, loaded as an estimator (read-only; see the module docstring).

    Args:
        model: the model's key.
        declaration: the declaration itself (the YAML form); default: the run's declarations.
        root: the folder relative ``file`` paths start from (default: the working directory,
            which ``kedro run`` sets to the project root).
        threads: onnxruntime threads per session (default: onnxruntime's choice).
        metadata: free-form (Kedro-Viz reads ``kedro-viz.layer``).
    """

    def __init__(
        self,
        *,
        model: str,
        declaration: dict[str, Any] | None = None,
        root: str | None = None,
        threads: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        from dex_bias.models.spec import ModelSpec

        if declaration is not None:
            self._spec = ModelSpec.from_dict(model, declaration)
        else:
            from dex_bias.model_audit import declaration as run_declaration

            self._spec = run_declaration(model)
        self._root = Path(root) if root else None
        self._threads = threads
        self._estimator = None
        self.metadata = metadata

    @property
    def spec(self):
        return self._spec

    def check(self):
        """Open the model now (file, checksum, signature), raising a clear error; returns the estimator."""
        if self._estimator is None:
            from dex_bias.models.runtime import load_estimator

            self._estimator = load_estimator(self._spec, root=self._root or Path.cwd(), threads=self._threads)
        return self._estimator

    def load(self):
        return self.check()

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"{self._spec.name}.age_model is a declared model file and is never written: "
            "declare a new model (models.declarations) to audit another file"
        )

    def _exists(self) -> bool:
        from dex_bias.models.weights import resolve_model_file

        try:
            resolve_model_file(self._spec.file, root=self._root, model=self._spec)
        except Exception:
            return False
        return True

    def _describe(self) -> dict[str, Any]:
        return {"model": self._spec.name, "format": self._spec.format, "file": self._spec.file}

    def preview(self) -> JSONPreview:
        """Kedro-Viz: the declaration (input, outputs, crop, provenance) as JSON."""
        import json

        return JSONPreview(json.dumps(self._spec.summary(), indent=2))

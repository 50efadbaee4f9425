"""``ChunkStoreDataset``: the folder where a resumable stage keeps its finished chunks.

Loading it gives a :class:`dex_bias.fanout.ChunkStore` over ``path``; the node hands it to the fan-out,
which writes each chunk there as soon as it is done (append-only: nothing already written is
replaced) and reads back what an earlier, stopped run left. Kedro itself never saves to it: the
tables a run makes are the versioned outputs of the node (``predictions``, ``region_attributions``);
the chunks are the checkpoint those tables are assembled from, keyed by a fingerprint of their
inputs, the model and the parameters instead of a run's version stamp (a rerun must find them).
So it is an input of its pipeline, always present (an empty folder is an empty store)::

    explain_chunks:
      type: dex_bias.datasets.ChunkStoreDataset
      path: data/07_model_output/explain_chunks
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from dex_bias.fanout import ChunkStore


class ChunkStoreDataset(AbstractDataset[None, ChunkStore]):
    """A :class:`~dex_bias.fanout.ChunkStore` at ``path`` (see the module docstring).

    Args:
        path: the store's folder (created when the first chunk is written).
        metadata: free-form (Kedro-Viz reads ``kedro-viz.layer``).
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> ChunkStore:
        return ChunkStore(self._path)

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"the chunk store at {self._path} is written chunk by chunk by the stage that reads it, "
            "never saved whole: make it an input of the node"
        )

    def _exists(self) -> bool:
        return True  # an empty store is a store: the first run starts it

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

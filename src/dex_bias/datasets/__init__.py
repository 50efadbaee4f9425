"""Custom Kedro datasets: Keras model files, declared models (Keras or ONNX) of the registry or the user, and
the chunk stores resumable stages write to."""

from dex_bias.datasets.chunk_store import ChunkStoreDataset
from dex_bias.datasets.declared_model import DeclaredModelDataset
from dex_bias.datasets.keras_model import KerasModelDataset, summarise_keras_file

__all__ = ["ChunkStoreDataset", "DeclaredModelDataset", "KerasModelDataset", "summarise_keras_file"]

"""Custom Kedro datasets: Keras model files, and declared models (Keras or ONNX) of the registry or the user."""

from dex_bias.datasets.declared_model import DeclaredModelDataset
from dex_bias.datasets.keras_model import KerasModelDataset, summarise_keras_file

__all__ = ["DeclaredModelDataset", "KerasModelDataset", "summarise_keras_file"]

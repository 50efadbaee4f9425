"""Custom Kedro datasets: Keras model files (``dex_bias.datasets.KerasModelDataset``)."""

from dex_bias.datasets.keras_model import KerasModelDataset, summarise_keras_file

__all__ = ["KerasModelDataset", "summarise_keras_file"]

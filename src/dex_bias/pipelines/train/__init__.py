"""The ``train`` pipeline: train (or adopt) the DEX age model on the train split of ``faces``."""

from dex_bias.pipelines.train.pipeline import create_pipeline

__all__ = ["create_pipeline"]

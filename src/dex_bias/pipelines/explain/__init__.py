"""The ``explain`` pipeline: LIME of the expected age over facial regions, and its quality."""

from dex_bias.pipelines.explain.pipeline import create_pipeline

__all__ = ["create_pipeline"]

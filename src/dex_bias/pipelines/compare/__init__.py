"""The ``compare`` pipeline: several audited models on the same faces, side by side."""

from dex_bias.pipelines.compare.pipeline import create_pipeline

__all__ = ["create_pipeline"]

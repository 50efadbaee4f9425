"""The ``infer`` pipeline: ``age_model`` over the faces it did not see -> ``predictions``."""

from dex_bias.pipelines.infer.pipeline import create_pipeline

__all__ = ["create_pipeline"]

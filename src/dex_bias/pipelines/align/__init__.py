"""The ``align`` pipeline: dlib detection, 68 landmarks and crop transforms for every face."""

from dex_bias.pipelines.align.pipeline import create_pipeline

__all__ = ["create_pipeline"]

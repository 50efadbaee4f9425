"""The ``ingest`` pipeline: a folder of UTKFace-named images (or the demo) → ``faces``, ``quarantine``."""

from dex_bias.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]

"""``correct``: bias corrections of age estimates, evaluated out of sample; gender-head metrics."""

from dex_bias.pipelines.correct.pipeline import create_pipeline

__all__ = ["create_pipeline"]

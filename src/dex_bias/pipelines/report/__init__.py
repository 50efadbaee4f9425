"""The ``report`` pipeline: predictions (+ region attributions where present) -> audit tables,
figures and the self-contained HTML audit report."""

from dex_bias.pipelines.report.pipeline import create_pipeline

__all__ = ["create_pipeline"]

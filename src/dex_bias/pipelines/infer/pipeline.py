"""The ``infer`` pipeline: faces + landmarks + ``age_model`` -> ``predictions`` and ``inference_failures``."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.infer.nodes import predict_ages
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """One node: the faces the model may be audited on, predicted in chunks fanned out on Dask (resumable)."""
    return pipeline_of(
        "infer",
        [
            (
                predict_ages,
                ["faces", "landmarks", "age_model", "infer_chunks", "params:infer", "params:dask"],
                ["predictions", "inference_failures"],
            ),
        ],
    )

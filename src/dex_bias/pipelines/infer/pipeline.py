"""The ``infer`` pipeline: faces + landmarks + ``age_model`` -> ``predictions`` and ``inference_failures``."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.infer.nodes import predict_ages


def create_pipeline(**kwargs) -> Pipeline:
    """One streaming node: the faces the model may be audited on, predicted batch by batch."""
    return Pipeline(
        [
            Node(predict_ages, ["faces", "landmarks", "age_model", "params:infer"],
                 ["predictions", "inference_failures"], name="predict_ages"),
        ],
        namespace="infer",
        prefix_datasets_with_namespace=False,
    )

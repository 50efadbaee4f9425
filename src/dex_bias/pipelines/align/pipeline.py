"""The ``align`` pipeline: faces → landmarks and alignment failures → a contact sheet."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.align.nodes import align_faces, draw_contact_sheet


def create_pipeline(**kwargs) -> Pipeline:
    """``faces`` → ``landmarks`` + ``alignment_failures`` → ``align_contact_sheet``."""
    return Pipeline(
        [
            Node(
                align_faces,
                [
                    "faces",
                    "params:align.detection",
                    "params:align.crop",
                    "params:align.five_point",
                    "params:align.chunk_size",
                    "params:dask",
                ],
                ["landmarks", "alignment_failures"],
                name="align_faces",
            ),
            Node(
                draw_contact_sheet,
                ["faces", "landmarks", "params:align.contact_sheet", "params:align.crop"],
                "align_contact_sheet",
                name="draw_contact_sheet",
            ),
        ],
        namespace="align",
        prefix_datasets_with_namespace=False,
    )

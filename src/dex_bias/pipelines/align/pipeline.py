"""The ``align`` pipeline: faces → landmarks and alignment failures → a contact sheet."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.align.nodes import align_faces, draw_contact_sheet
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """``faces`` → ``landmarks`` + ``alignment_failures`` → ``align_contact_sheet``."""
    return pipeline_of(
        "align",
        [
            (
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
            ),
            (
                draw_contact_sheet,
                ["faces", "landmarks", "params:align.contact_sheet", "params:align.crop"],
                "align_contact_sheet",
            ),
        ],
    )

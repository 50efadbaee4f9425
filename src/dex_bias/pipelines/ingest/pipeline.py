"""The ``ingest`` pipeline: image folder (or generated demo) → ``faces`` and ``quarantine``."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.ingest.nodes import prepare_image_folder, screen_images, split_faces
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """params:ingest → image folder (demo made if needed) → screened files, quarantine → faces."""
    return pipeline_of(
        "ingest",
        [
            (prepare_image_folder, ["params:ingest.image_dir", "params:ingest.demo"], "image_folder"),
            (screen_images, ["image_folder", "params:ingest.decode"], ["screened_faces", "quarantine"]),
            (split_faces, ["screened_faces", "params:ingest.split", "params:ingest.age_bands"], "faces"),
        ],
    )

"""The ``ingest`` pipeline: image folder (or generated demo) → ``faces`` and ``quarantine``."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.ingest.nodes import prepare_image_folder, screen_images, split_faces


def create_pipeline(**kwargs) -> Pipeline:
    """params:ingest → image folder (demo made if needed) → screened files, quarantine → faces."""
    return Pipeline(
        [
            Node(
                prepare_image_folder,
                ["params:ingest.image_dir", "params:ingest.demo"],
                "image_folder",
                name="prepare_image_folder",
            ),
            Node(
                screen_images,
                ["image_folder", "params:ingest.decode"],
                ["screened_faces", "quarantine"],
                name="screen_images",
            ),
            Node(
                split_faces,
                ["screened_faces", "params:ingest.split", "params:ingest.age_bands"],
                "faces",
                name="split_faces",
            ),
        ],
        namespace="ingest",
        prefix_datasets_with_namespace=False,
    )

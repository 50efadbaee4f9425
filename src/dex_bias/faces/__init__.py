"""Face geometry: crop transforms and crops cut on demand (dlib detection and landmarks follow).

Public API used by the later pipelines::

    from dex_bias.faces import crop_transforms, cut_crops, iter_crop_batches, landmarks_in_crop
"""

from dex_bias.faces.crops import (
    CROP_COLUMNS,
    LANDMARK_X_COLUMNS,
    LANDMARK_Y_COLUMNS,
    N_LANDMARKS,
    crop_image,
    crop_to_image,
    crop_transforms,
    cut_crops,
    image_to_crop,
    iter_crop_batches,
    landmarks_in_crop,
    transform_to_columns,
)

__all__ = [
    "CROP_COLUMNS",
    "LANDMARK_X_COLUMNS",
    "LANDMARK_Y_COLUMNS",
    "N_LANDMARKS",
    "crop_image",
    "crop_to_image",
    "crop_transforms",
    "cut_crops",
    "image_to_crop",
    "iter_crop_batches",
    "landmarks_in_crop",
    "transform_to_columns",
]

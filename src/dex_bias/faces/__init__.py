"""Face geometry: dlib detection, 68 landmarks, crop transforms and crops cut on demand.

Public API used by the later pipelines::

    from dex_bias.faces import crop_transforms, cut_crops, iter_crop_batches, landmarks_in_crop

Alignment (:mod:`dex_bias.faces.detect` for one image, :mod:`dex_bias.faces.align` for a
table fanned out on Dask): ``AlignSettings``, ``align_image``, ``FanOut``, ``align_table``.
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
from dex_bias.faces.detect import AlignSettings, DetectionStage, NoFaceFound, align_image, shape_predictor_path
from dex_bias.faces.align import FAILURE_COLUMNS, LANDMARK_COLUMNS, FanOut, align_table

__all__ = [
    "AlignSettings",
    "DetectionStage",
    "FAILURE_COLUMNS",
    "FanOut",
    "LANDMARK_COLUMNS",
    "NoFaceFound",
    "align_image",
    "align_table",
    "shape_predictor_path",
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

"""Face geometry: dlib detection, 68 landmarks, crop transforms and crops cut on demand.

Public API used by the later pipelines::

    from dex_bias.faces import crop_transforms, cut_crops, iter_crop_batches, landmarks_in_crop

Alignment (:mod:`dex_bias.faces.detect` for one image, :mod:`dex_bias.faces.align` for a
table fanned out on Dask): ``AlignSettings``, ``align_image``, ``FanOut``, ``align_table``.

Names are loaded on first use (PEP 562), so that Dask worker processes importing
:mod:`dex_bias.faces.detect` do not pay for pandas.
"""

from __future__ import annotations

import importlib

_WHERE: dict[str, str] = {
    **{
        name: "dex_bias.faces.columns"
        for name in ("CROP_COLUMNS", "LANDMARK_X_COLUMNS", "LANDMARK_Y_COLUMNS", "N_LANDMARKS")
    },
    **{
        name: "dex_bias.faces.crops"
        for name in (
            "crop_image",
            "crop_to_image",
            "crop_transforms",
            "cut_crops",
            "image_to_crop",
            "iter_crop_batches",
            "landmarks_in_crop",
            "transform_to_columns",
        )
    },
    **{
        name: "dex_bias.faces.detect"
        for name in (
            "AlignSettings",
            "CropSettings",
            "DetectionSettings",
            "DetectionStage",
            "FivePointSettings",
            "NoFaceFound",
            "align_image",
            "shape_predictor_path",
        )
    },
    **{
        name: "dex_bias.faces.align"
        for name in ("FAILURE_COLUMNS", "FAILURE_REASONS", "LANDMARK_COLUMNS", "FanOut", "align_table")
    },
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dex_bias.faces' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))

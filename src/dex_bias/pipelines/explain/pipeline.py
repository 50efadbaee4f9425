"""The ``explain`` pipeline: predictions + landmarks + age_model -> region attributions, group maps, quality."""

from kedro.pipeline import Pipeline

from dex_bias.pipelines.explain.nodes import (
    attribution_group_maps,
    collect_attributions,
    draw_regions_figure,
    explain_with_quickshift,
    explain_with_regions,
    measure_explanation_quality,
    select_images,
)
from dex_bias.wiring import pipeline_of


def create_pipeline(**kwargs) -> Pipeline:
    """select images -> LIME over regions (and quickshift) -> attributions, group maps, quality, figures."""
    return pipeline_of(
        "explain",
        [
            (
                select_images,
                ["predictions", "landmarks", "faces", "params:explain"],
                ["explain_targets", "explain_selection_failures"],
            ),
            (
                explain_with_regions,
                [
                    "explain_targets",
                    "explain_selection_failures",
                    "age_model",
                    "explain_chunks",
                    "params:explain",
                    "params:dask",
                ],
                ["region_attribution_rows", "explanation_failures", "explain_crop_frame"],
            ),
            (
                explain_with_quickshift,
                ["explain_targets", "age_model", "explain_chunks", "params:explain", "params:dask"],
                "quickshift_attribution_rows",
            ),
            (collect_attributions, ["region_attribution_rows", "quickshift_attribution_rows"], "region_attributions"),
            (
                measure_explanation_quality,
                [
                    "explain_targets",
                    "region_attributions",
                    "age_model",
                    "explain_chunks",
                    "params:explain",
                    "params:dask",
                ],
                "explanation_quality",
            ),
            (
                attribution_group_maps,
                ["region_attributions", "explain_targets", "explain_crop_frame", "params:explain"],
                ["group_attributions", "group_attribution_maps"],
            ),
            (draw_regions_figure, ["explain_targets", "explain_crop_frame", "params:explain"], "facial_regions_figure"),
        ],
    )

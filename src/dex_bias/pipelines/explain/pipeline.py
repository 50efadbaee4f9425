"""The ``explain`` pipeline: predictions + landmarks + age_model -> region attributions, group maps, quality."""

from kedro.pipeline import Node, Pipeline

from dex_bias.pipelines.explain.nodes import (
    attribution_group_maps,
    collect_attributions,
    draw_regions_figure,
    explain_with_quickshift,
    explain_with_regions,
    measure_quality,
    select_images,
)


def create_pipeline(**kwargs) -> Pipeline:
    """select images -> LIME over regions (and quickshift) -> attributions, group maps, quality, figures."""
    return Pipeline(
        [
            Node(
                select_images,
                ["predictions", "landmarks", "faces", "params:explain"],
                ["explain_targets", "explain_selection_failures"],
                name="select_images",
            ),
            Node(
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
                name="explain_with_regions",
            ),
            Node(
                explain_with_quickshift,
                ["explain_targets", "age_model", "explain_chunks", "params:explain", "params:dask"],
                "quickshift_attribution_rows",
                name="explain_with_quickshift",
            ),
            Node(
                collect_attributions,
                ["region_attribution_rows", "quickshift_attribution_rows"],
                "region_attributions",
                name="collect_attributions",
            ),
            Node(
                measure_quality,
                [
                    "explain_targets",
                    "region_attributions",
                    "age_model",
                    "explain_chunks",
                    "params:explain",
                    "params:dask",
                ],
                "explanation_quality",
                name="measure_explanation_quality",
            ),
            Node(
                attribution_group_maps,
                ["region_attributions", "explain_targets", "explain_crop_frame", "params:explain"],
                ["group_attributions", "group_attribution_maps"],
                name="attribution_group_maps",
            ),
            Node(
                draw_regions_figure,
                ["explain_targets", "explain_crop_frame", "params:explain"],
                "facial_regions_figure",
                name="draw_regions_figure",
            ),
        ],
        namespace="explain",
        prefix_datasets_with_namespace=False,
    )

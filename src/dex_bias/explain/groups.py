"""Which images to explain, and group attribution maps in one aligned frame.

Group maps (the dex-model-analysis article's Figures 6-7, here of signed LIME weights in years
rather than of positive-pixel counts): every face is explained over its own regions, so to
average faces the weights are painted onto ONE region map, that of the mean landmark template
(all explained faces' 68 points averaged in the aligned crop frame). Painting is linear, so the
mean of the painted maps is the painted mean of the weights; an empty region contributes its
weight 0 (the flag says so), never NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dex_bias.explain.regions import REGION_NAMES, paint_regions
from dex_bias.utkface import GENDER_NAMES, RACE_NAMES, AgeBands, age_bands, band_label

GROUP_KEYS = ("race", "gender", "age_band")
LABEL_COLUMNS = ["age", "gender", "race"]


def explainable_faces(
    predictions: pd.DataFrame, landmarks: pd.DataFrame, faces: pd.DataFrame, bands: AgeBands
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The faces that can be explained, and those that cannot with a reason: ``(targets, skipped)``.

    Candidates are the faces of the splits that were predicted (every split when ``predictions``
    has no ``split``). A face without landmarks (alignment failed) is skipped as ``no_landmarks``,
    one with landmarks but no ``predicted_age`` as ``no_prediction``; candidates = targets +
    skipped. ``targets``: ``image_id``, ``path``, ``predicted_age``, the labels, the landmarks
    columns and ``age_band`` (``bands``: inclusive years); ``skipped``: ``image_id``,
    ``reason``, ``detail``.
    """
    predicted_splits = set(predictions["split"].dropna()) if "split" in predictions else set(faces["split"])
    candidates = faces[faces["split"].isin(predicted_splits)][["image_id", "path"]]
    has_prediction = candidates["image_id"].isin(predictions.loc[predictions["predicted_age"].notna(), "image_id"])
    has_landmarks = candidates["image_id"].isin(landmarks["image_id"])
    # Alignment comes first in the flow: a face it failed on has no prediction either, for that reason.
    skipped = pd.concat(
        [
            pd.DataFrame(
                {
                    "image_id": candidates.loc[~has_landmarks, "image_id"],
                    "reason": "no_landmarks",
                    "detail": "alignment failed (see `alignment_failures`)",
                }
            ),
            pd.DataFrame(
                {
                    "image_id": candidates.loc[has_landmarks & ~has_prediction, "image_id"],
                    "reason": "no_prediction",
                    "detail": "no predicted_age in `predictions` (see `inference_failures`)",
                }
            ),
        ],
        ignore_index=True,
    )
    usable = candidates[has_prediction & has_landmarks]
    targets = usable.merge(predictions[["image_id", "predicted_age", *LABEL_COLUMNS]], on="image_id").merge(
        landmarks, on="image_id"
    )
    targets["age_band"] = age_bands(targets["age"], bands).astype(str).to_numpy()
    return targets, skipped


def stratified_sample(
    table: pd.DataFrame, max_images: int | None, seed: int, strata: tuple[str, ...] = GROUP_KEYS
) -> pd.DataFrame:
    """Up to ``max_images`` rows, every non-empty stratum represented, the rest proportional.

    Each stratum first gets one row (when ``max_images`` is at least the number of strata), the
    remaining places are shared in proportion to stratum size (largest remainders), and rows
    are drawn without replacement with a ``seed``-ed generator. ``None`` or a size at least
    the table's keeps every row. Row order follows the input table.
    """
    if max_images is None or max_images >= len(table):
        return table
    if max_images <= 0:
        return table.iloc[:0]
    rng = np.random.default_rng(seed)
    sizes = table.groupby(list(strata), observed=True, sort=True).size()
    sizes = sizes[sizes > 0]
    quota = pd.Series(0, index=sizes.index)
    if max_images >= len(sizes):
        quota[:] = 1
        remaining = max_images - len(sizes)
        spare = sizes - 1
        share = spare / spare.sum() * remaining if spare.sum() else spare * 0.0
        extra = np.floor(share).astype(int)
        leftover = remaining - int(extra.sum())
        order = np.argsort(-(share - extra).to_numpy(), kind="stable")[:leftover]
        extra.iloc[order] += 1
        quota += np.minimum(extra, spare)
    else:  # fewer places than strata: one row from each of a seeded choice of strata
        chosen = rng.choice(len(sizes), size=max_images, replace=False)
        quota.iloc[chosen] = 1
    keep = []
    for key, rows in table.groupby(list(strata), observed=True, sort=True):
        n = int(quota.get(key, 0))
        if n:
            keep.extend(rng.choice(rows.index.to_numpy(), size=n, replace=False))
    return table.loc[table.index.isin(keep)]


def group_mean_weights(attributions: pd.DataFrame, method: str = "regions") -> pd.DataFrame:
    """Mean signed weight per race x gender x age band x region (long), with counts.

    ``attributions`` is ``region_attributions`` plus an ``age_band`` column. Empty regions count
    with weight 0; ``n_empty`` says how many. Columns: race, gender, age_band, region, n_images,
    mean_weight, sd_weight, n_empty, race_name, gender_name.
    """
    rows = attributions[attributions["method"] == method]
    grouped = rows.groupby([*GROUP_KEYS, "region"], observed=True, sort=True)
    table = grouped.agg(
        n_images=("image_id", "nunique"),
        mean_weight=("weight", "mean"),
        sd_weight=("weight", "std"),
        n_empty=("region_empty", "sum"),
    ).reset_index()
    table["sd_weight"] = table["sd_weight"].fillna(0.0)  # one image: no spread, not unknown
    table["n_empty"] = table["n_empty"].astype(int)
    table["region"] = pd.Categorical(table["region"], categories=REGION_NAMES, ordered=True)
    table = table.sort_values([*GROUP_KEYS, "region"]).reset_index(drop=True)
    table["region"] = table["region"].astype(str)
    table["race_name"] = table["race"].map(RACE_NAMES)
    table["gender_name"] = table["gender"].map(GENDER_NAMES)
    return table


def quality_sample(
    targets: pd.DataFrame, region_attributions: pd.DataFrame, sample_size: int | None, seed: int
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The explained targets whose explanations are measured (a seeded :func:`stratified_sample`
    of ``sample_size``), and each one's 14 ``regions`` weights in :data:`REGION_NAMES` order."""
    rows = region_attributions[region_attributions["method"] == "regions"]
    explained = targets[targets["image_id"].isin(rows["image_id"])]
    sample = stratified_sample(explained, sample_size, seed).reset_index(drop=True)
    weights = {
        image_id: group.set_index("region").loc[list(REGION_NAMES), "weight"].to_numpy()
        for image_id, group in rows[rows["image_id"].isin(sample["image_id"])].groupby("image_id")
    }
    return sample, weights


def group_attribution_maps(
    region_attributions: pd.DataFrame, targets: pd.DataFrame, template_map: np.ndarray, bands: AgeBands
):
    """Mean signed region weights per race x gender x age band (:func:`group_mean_weights`) and
    the figure painting them on ``template_map`` (:func:`group_maps_figure`), bands in age order."""
    rows = region_attributions.merge(targets[["image_id", "age_band"]], on="image_id", how="left")
    table = group_mean_weights(rows, method="regions")
    labels = [band_label(int(low), int(high)) for low, high in bands]
    present = set(table["age_band"])
    return table, group_maps_figure(table, template_map, [label for label in labels if label in present] or labels)


def group_maps_figure(group_table: pd.DataFrame, template_map: np.ndarray, band_order: list[str]):
    """Figures 6-7 of the article, of signed weights: one painted template map per group.

    Rows: race x gender; columns: age bands. Red pushes the expected age up, blue down; one
    symmetric colour scale (years) for all panels, set by the face and band regions (the
    background is clipped to it); grey cells are groups with no image.
    """
    from matplotlib.figure import Figure  # the object API: no pyplot state kept alive per figure

    groups = group_table[["race", "gender"]].drop_duplicates().sort_values(["race", "gender"])
    n_rows, n_cols = max(len(groups), 1), max(len(band_order), 1)
    fig = Figure(figsize=(1.6 * n_cols + 1.5, 1.6 * n_rows + 0.8))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    # The colour scale follows the face and band regions: the background often carries far larger
    # weights (a model that reads the backdrop) and would wash the face out; it is clipped instead.
    face_rows = group_table[group_table["region"] != "background"]
    limit = float(np.nanmax(np.abs(face_rows["mean_weight"]))) if len(face_rows) else 1.0
    limit = limit or 1.0
    image = None
    for r, (_, group) in enumerate(groups.iterrows()):
        for c, band in enumerate(band_order):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            cell = group_table[
                (group_table["race"] == group["race"])
                & (group_table["gender"] == group["gender"])
                & (group_table["age_band"].astype(str) == band)
            ]
            if r == 0:
                ax.set_title(band, fontsize=9)
            if c == 0:
                ax.set_ylabel(
                    f"{RACE_NAMES.get(group['race'], group['race'])}\n"
                    f"{GENDER_NAMES.get(group['gender'], group['gender'])}",
                    fontsize=8,
                )
            if cell.empty:
                ax.set_facecolor("0.92")
                continue
            values = np.zeros(len(REGION_NAMES))
            values[[REGION_NAMES.index(n) for n in cell["region"]]] = cell["mean_weight"].to_numpy()
            image = ax.imshow(paint_regions(values, template_map), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.text(
                1,
                1,
                f"n={int(cell['n_images'].max())}",
                fontsize=6,
                va="top",
                color="0.1",
                bbox={"facecolor": "white", "alpha": 0.7, "pad": 0.5, "linewidth": 0},
            )
    if image is not None:
        fig.colorbar(
            image,
            ax=axes,
            shrink=0.6,
            extend="both",
            label="mean LIME weight (years of expected age); background clipped",
        )
    fig.suptitle("Mean signed region attributions by race, gender and age band (aligned template)", fontsize=10)
    return fig

"""Figures of the audit, drawn with matplotlib's object API (no pyplot state, no display needed).

Each function returns a ``matplotlib.figure.Figure``; ``figure_to_image`` renders one to a PIL
image (PNG-exact) for a versioned image dataset and for inlining in the HTML report.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from dex_bias.explain.attributions import method_weights
from dex_bias.stats.metrics import with_display_columns
from dex_bias.utkface import PAPER_AGE_BANDS

DPI = 110
PALETTE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")


def figure_to_image(figure: Figure) -> Image.Image:
    """Render a figure to an RGBA PIL image (PNG round trip, so pixels are what a file holds)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    buffer.seek(0)
    image = Image.open(buffer)
    image.load()
    return image


def message_figure(title: str, message: str) -> Figure:
    """A small figure that says why a plot is absent (e.g. no explanations in this run)."""
    figure = Figure(figsize=(6, 1.6))
    axes = figure.add_subplot()
    axes.axis("off")
    axes.set_title(title)
    axes.text(0.5, 0.4, message, ha="center", va="center", wrap=True)
    return figure


def error_distributions(df: pd.DataFrame, by: str = "race", bands: Sequence[Sequence[int]] = PAPER_AGE_BANDS) -> Figure:
    """The article's Figures 4-5: signed error and accuracy by group, one row per age band.

    Left: predicted − true age (years); right: accuracy = (100 − |error|) / 100. Box plots per
    group of ``by`` (``race`` or ``gender``), with n under each box.
    """
    table = with_display_columns(df, bands)
    table["error"] = table["predicted_age"] - table["age"]
    table["accuracy"] = (100 - table["error"].abs()) / 100
    band_names = list(table["age_band"].cat.categories)
    groups = list(table[by].cat.categories)
    figure = Figure(figsize=(11, 2.6 * len(band_names)), layout="constrained")
    axes = figure.subplots(len(band_names), 2, squeeze=False)
    for row, band in enumerate(band_names):
        part = table[table["age_band"] == band]
        for column, (value, label) in enumerate((("error", "error (years)"), ("accuracy", "accuracy"))):
            ax = axes[row, column]
            data = [part.loc[part[by] == group, value].to_numpy() for group in groups]
            positions = [i for i, d in enumerate(data) if len(d)]
            if positions:
                boxes = ax.boxplot(
                    [data[i] for i in positions], positions=positions, widths=0.6, patch_artist=True, showfliers=False
                )
                for patch, i in zip(boxes["boxes"], positions):
                    patch.set_facecolor(PALETTE[i % len(PALETTE)])
                    patch.set_alpha(0.7)
            ax.set_xticks(range(len(groups)), [f"{g}\nn={len(d)}" for g, d in zip(groups, data)], fontsize=8)
            if value == "error":
                ax.axhline(0, color="black", lw=0.8)
            ax.set_ylabel(label)
            ax.set_title(f"true age {band}: {label} by {by}", fontsize=10)
    return figure


def gate_rates(
    gates: pd.DataFrame,
    grouping: str = "race",
    measures: Sequence[str] = ("minors_accepted", "adults_challenged"),
    *,
    outer: str | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Age-gate rates with Wilson intervals: one panel per measure, bars per group and τ.

    ``outer``: the column whose values the table holds side by side (``report.outer_grouping``,
    e.g. ``model_name``); each bar is then labelled ``<value> · <group>``.
    """
    figure = Figure(figsize=(11, 3.4 * len(measures)), layout="constrained")
    axes = figure.subplots(len(measures), 1, squeeze=False)[:, 0]
    for ax, measure in zip(axes, measures):
        part = gates[(gates["measure"] == measure) & gates["grouping"].isin(["overall", grouping])]
        if outer and outer in part.columns:
            part = part.assign(group=part[outer].astype(str) + " · " + part["group"].astype(str))
        groups = list(dict.fromkeys(part["group"]))
        taus = sorted(part["challenge_age"].unique())
        width = 0.8 / max(len(taus), 1)
        for k, tau in enumerate(taus):
            rows = part[part["challenge_age"] == tau].set_index("group").reindex(groups)
            x = np.arange(len(groups)) + (k - (len(taus) - 1) / 2) * width
            rate = rows["rate"].to_numpy(float)
            errors = np.vstack([rate - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - rate])
            ax.bar(
                x,
                rate,
                width,
                yerr=np.clip(np.nan_to_num(errors), 0, None),
                capsize=3,
                color=PALETTE[k % len(PALETTE)],
                label=f"challenge age {tau:g}",
            )
        ax.set_xticks(range(len(groups)), groups)
        ax.set_ylabel("rate")
        ax.set_ylim(0, 1)
        ax.set_title(f"{measure.replace('_', ' ')} (Wilson {100 * confidence:g}% CI)")
        ax.legend(fontsize=8)
    return figure


def predicted_vs_true(df: pd.DataFrame, by: str = "race") -> Figure:
    """Predicted against true age: points per image and each group's mean per 5-year bin."""
    table = with_display_columns(df)
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.add_subplot()
    top = float(max(table["age"].max(), table["predicted_age"].max(), 1))
    ax.plot([0, top], [0, top], color="black", lw=1, label="perfect estimate")
    for i, group in enumerate(table[by].cat.categories):
        part = table[table[by] == group]
        if part.empty:
            continue
        colour = PALETTE[i % len(PALETTE)]
        ax.scatter(part["age"], part["predicted_age"], s=6, alpha=0.25, color=colour)
        binned = part.groupby((part["age"] // 5) * 5 + 2.5)["predicted_age"].mean()
        ax.plot(binned.index, binned.to_numpy(), color=colour, lw=2, label=f"{group} (mean per 5 y)")
    ax.set_xlabel("true age (years)")
    ax.set_ylabel("predicted age (years)")
    ax.set_title(f"Predicted vs true age by {by}")
    ax.legend(fontsize=8)
    return figure


def mean_region_weights(
    predictions: pd.DataFrame, region_attributions: pd.DataFrame, method: str, by: str
) -> pd.DataFrame:
    """Mean LIME weight per group of ``by`` (rows) and facial region (columns): the heat map's table.

    ``method`` rows of ``region_attributions``, each (image, region) once, labelled from
    ``predictions`` (display columns: ``by`` may be ``race``, ``gender`` or ``age_band``).
    """
    weights = method_weights(region_attributions, method)
    labelled = weights.merge(with_display_columns(predictions)[["image_id", by]], on="image_id")
    return labelled.pivot_table(index=by, columns="region", values="weight", aggfunc="mean", observed=True)


def attribution_heatmap(mean_weights: pd.DataFrame, title: str) -> Figure:
    """Heat map of mean region weights: rows are groups, columns facial regions (the article's
    Figures 6-7 as a table of colours); a diverging scale centred on 0."""
    figure = Figure(
        figsize=(1.0 + 0.7 * mean_weights.shape[1], 1.2 + 0.45 * mean_weights.shape[0]), layout="constrained"
    )
    ax = figure.add_subplot()
    values = mean_weights.to_numpy(float)
    limit = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 1.0
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit or -1, vmax=limit or 1, aspect="auto")
    ax.set_xticks(range(mean_weights.shape[1]), mean_weights.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(mean_weights.shape[0]), mean_weights.index, fontsize=8)
    ax.set_title(title, fontsize=10)
    figure.colorbar(image, ax=ax, label="mean LIME weight (years of expected age)")
    return figure

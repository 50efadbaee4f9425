"""The model-comparison report: several models on the same faces, side by side, in plain words.

Figures (matplotlib object API) and one self-contained HTML document built with the audit
report's own pieces (:mod:`dex_bias.report.html`): findings first (which model is more accurate,
which is fairer by which measure, where the paired tests show a difference), then the
leaderboard, the per-group metrics and gate rates side by side, the paired tests, and where
explanations exist, which facial regions each model leans on per group.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from dex_bias.report.figures import PALETTE
from dex_bias.report.html import Section, render_report


def _models(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["model"]))


def _model_bars(rows: pd.DataFrame, models: list[str], estimate: str, low: str, high: str, *, scale: float,
                ylabel: str, title: str, height: float) -> Figure:
    """Grouped bars: for each group (x), each model's ``estimate`` with its ``[low, high]`` interval."""
    groups = list(dict.fromkeys(rows["group"]))
    figure = Figure(figsize=(max(5.5, 1.2 * len(groups) + 2), height), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(models), 1)
    for index, model in enumerate(models):
        part = rows[rows["model"] == model].set_index("group").reindex(groups)
        x = np.arange(len(groups)) + (index - (len(models) - 1) / 2) * width
        value = scale * part[estimate]
        errors = np.vstack([(value - scale * part[low]).clip(lower=0).fillna(0),
                            (scale * part[high] - value).clip(lower=0).fillna(0)])
        axes.bar(x, value, width, color=PALETTE[index % len(PALETTE)], label=model, yerr=errors, capsize=3,
                 error_kw={"linewidth": 1})
    axes.set_xticks(np.arange(len(groups)), groups, rotation=20 if len(groups) > 4 else 0)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def metric_by_group_figure(metrics: pd.DataFrame, feature: str, metric: str = "mae",
                           label: str = "mean absolute error (years)") -> Figure:
    """Per group of ``feature``: each model's ``metric`` with its bootstrap interval, side by side."""
    return _model_bars(metrics[metrics["grouping"] == feature], _models(metrics), metric, f"{metric}_ci_low",
                       f"{metric}_ci_high", scale=1.0, ylabel=label, height=3.6,
                       title=f"{label.split(' (')[0]} by {feature}, per model (95% bootstrap intervals)")


def gate_by_group_figure(gates: pd.DataFrame, feature: str, measure: str, challenge_age: float) -> Figure:
    """Per group of ``feature``: each model's gate rate (``measure`` at ``challenge_age``) with Wilson intervals."""
    rows = gates[(gates["grouping"] == feature) & (gates["measure"] == measure)
                 & (gates["challenge_age"] == float(challenge_age)) & (gates["n"] > 0)]
    return _model_bars(rows, _models(gates), "rate", "ci_low", "ci_high", scale=100.0, ylabel="%", height=3.4,
                       title=f"{measure.replace('_', ' ')} at challenge age {challenge_age:g}, per model "
                             "(95% Wilson intervals)")


def region_attention_figure(attention: pd.DataFrame) -> Figure:
    """Mean LIME weight (years) of each facial region per model (rows) and race (panels)."""
    races = list(dict.fromkeys(attention["race"]))
    models = _models(attention)
    regions = [r for r in dict.fromkeys(attention["region"]) if r != "background"]
    figure = Figure(figsize=(min(18, 3.2 * len(races) + 1.5), 0.5 * len(models) + 3.0), layout="constrained")
    axes_row = figure.subplots(1, len(races), sharey=True, squeeze=False)[0]
    scale = float(np.nanmax(np.abs(attention["mean_weight"]))) if len(attention) else 1.0
    image = None
    for axes, race in zip(axes_row, races):
        grid = (attention[attention["race"] == race].pivot_table(index="model", columns="region", values="mean_weight",
                                                               observed=True)
                .reindex(index=models, columns=regions))
        image = axes.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto")
        axes.set_title(race, fontsize=9)
        axes.set_xticks(range(len(regions)), [r.replace("_", " ") for r in regions], rotation=90, fontsize=7)
        axes.set_yticks(range(len(models)), models, fontsize=8)
    if image is not None:
        figure.colorbar(image, ax=list(axes_row), shrink=0.8, label="mean LIME weight (years of expected age)")
    figure.suptitle("Which facial regions each model's estimate leans on, by race", fontsize=10)
    return figure


def _interval(row, metric: str, digits: int = 2) -> str:
    return f"{row[metric]:.{digits}f} (95% CI {row[f'{metric}_ci_low']:.{digits}f}–{row[f'{metric}_ci_high']:.{digits}f})"


def comparison_findings(leaderboard: pd.DataFrame, metrics: pd.DataFrame, gates: pd.DataFrame,
                        paired: pd.DataFrame, *, features: Sequence[str], challenge_age: float,
                        gate_measure: str, alpha: float) -> list[str]:
    """Plain-words findings (HTML-escaped): who is more accurate, who is fairer by which measure."""
    out = []
    board = leaderboard.set_index("model")
    best = leaderboard.iloc[0]
    out.append(f"{len(leaderboard)} models on the same {int(best['n'])} faces. Most accurate overall: {best['model']}, "
               f"mean absolute error {_interval(best, 'mae')} years; "
               + "; ".join(f"{row['model']}: {_interval(row, 'mae')}" for _, row in leaderboard.iloc[1:].iterrows())
               + ".")
    for feature in features:
        column = f"{feature}_mae_range"
        if column not in board or board[column].isna().all():
            continue
        ranked = board[column].dropna().sort_values()
        fairest = ranked.index[0]
        spread = "; ".join(
            f"{model}: {board.loc[model, column]:.2f} years (95% CI {board.loc[model, f'{column}_ci_low']:.2f}–"
            f"{board.loc[model, f'{column}_ci_high']:.2f}; Gini {board.loc[model, f'{feature}_mae_gini']:.3f}; "
            f"worst group {board.loc[model, f'{feature}_mae_worst_group']})" for model in ranked.index)
        out.append(f"Fairest across {feature} groups by the spread of group MAE (max − min): {fairest}. {spread}.")
        gate_column = f"{feature}_gate_range"
        if gate_column in board and board[gate_column].notna().any():
            gate_ranked = board[gate_column].dropna().sort_values()
            out.append(f"Spread across {feature} groups of {gate_measure.replace('_', ' ')} at challenge age "
                       f"{challenge_age:g} (max − min): "
                       + "; ".join(f"{model}: {100 * value:.1f} points" for model, value in gate_ranked.items())
                       + f" — smallest for {gate_ranked.index[0]}.")
    overall_gate = gates[(gates["grouping"] == "overall") & (gates["measure"] == gate_measure)
                         & (gates["challenge_age"] == float(challenge_age)) & (gates["n"] > 0)]
    if len(overall_gate):
        out.append(f"{gate_measure.replace('_', ' ').capitalize()} at challenge age {challenge_age:g}: "
                   + "; ".join(f"{row['model']}: {100 * row['rate']:.1f}% (95% CI {100 * row['ci_low']:.1f}–"
                               f"{100 * row['ci_high']:.1f}%, n = {int(row['n'])})"
                               for _, row in overall_gate.iterrows()) + ".")
    tested = paired[paired["status"] == "ok"]
    for (model_a, model_b), rows in tested.groupby(["model_a", "model_b"], sort=False):
        shown = rows[rows["p_corr"] < alpha]
        overall = rows[rows["grouping"] == "overall"]
        if len(overall):
            o = overall.iloc[0]
            out.append(f"{model_a} against {model_b} on the same faces: mean paired difference in absolute error "
                       f"{o['mean_difference']:+.2f} years (95% CI {o['mean_difference_ci_low']:+.2f} to "
                       f"{o['mean_difference_ci_high']:+.2f}; positive: {model_a} worse), rank-biserial "
                       f"{o['rank_biserial']:+.2f}; Wilcoxon signed-rank, Holm-corrected p = {o['p_corr']:.2g}.")
        groups = shown[shown["grouping"] != "overall"]
        if len(groups):
            wins = groups.groupby("verdict")["group"].apply(lambda g: ", ".join(g)).to_dict()
            out.append(f"By group ({model_a} vs {model_b}, Holm p < {alpha}): "
                       + "; ".join(f"{verdict} in {groups_}" for verdict, groups_ in wins.items()) + ". "
                       f"No difference shown in {len(rows) - len(shown)} of {len(rows)} groups.")
    return [html.escape(sentence) for sentence in out]


def comparison_report(*, coverage: pd.DataFrame, leaderboard: pd.DataFrame, spread: pd.DataFrame,
                      metrics: pd.DataFrame,
                      gates: pd.DataFrame, paired: pd.DataFrame, attention: pd.DataFrame,
                      declarations: pd.DataFrame, figures: Sequence[tuple[str, Image.Image]],
                      attention_figure: Image.Image | None, features: Sequence[str], challenge_age: float,
                      gate_measure: str, alpha: float, made: str) -> str:
    """The self-contained HTML comparison report (see the module docstring)."""
    findings = comparison_findings(leaderboard, metrics, gates, paired, features=features,
                                   challenge_age=challenge_age, gate_measure=gate_measure, alpha=alpha)
    introduction = [html.escape(
        f"{made}. Each model audited on the faces all of them predicted; each model's full audit (tests, "
        "the article's tables, figures) is its own audit_report. Error = predicted − true age, in years; "
        "intervals are 95 % (bootstrap for errors, Wilson for rates).")]
    sections = [
        Section("The models", [html.escape("What each model is, where it came from, and the faces compared.")],
                tables=[("Declarations and provenance", declarations, False), ("Faces compared", coverage, False)]),
        Section("Leaderboard", [html.escape(
            "Overall MAE, and how unequal each model is across groups: the range (max − min, with its bootstrap "
            "interval) and the Gini coefficient of the group MAEs, and the range of a gate rate; groups smaller "
            "than the minimum n are "
            "left out of the spread.")], tables=[("Leaderboard", leaderboard, False),
                                                 ("Spread across groups, with 95% bootstrap intervals", spread, True)]),
        Section("Side by side", [html.escape("MAE and mean signed error per group, and the age-gate rates, for "
                                             "every model.")], figures=list(figures),
                tables=[("Error metrics per model and group", metrics, True),
                        ("Age-gate rates per model and group", gates, True)]),
        Section("Paired tests", [html.escape(
            "Wilcoxon signed-rank test of the paired difference in absolute error (first model − second) on the "
            "same images, per group; the rank-biserial correlation is the effect the test ranks (positive: the "
            "first model's errors are larger) and its sign gives the verdict; p Holm-corrected over every test "
            "in the table.")], tables=[("Paired tests between models", paired, False)]),
    ]
    if attention.empty:
        sections.append(Section("Where the models look", [html.escape(
            "No region attributions for these models in this run (run the explain pipeline).")]))
    else:
        sections.append(Section("Where the models look", [html.escape(
            "Mean LIME weight of each facial region (years of expected age) per model and race, on each model's "
            "explained sample; a region one model leans on and another ignores for the same group is a "
            "difference in what they read from a face.")],
            figures=[("Mean region weight by model and race", attention_figure)] if attention_figure else [],
            tables=[("Mean region weight per model, race and region", attention, True)]))
    return render_report("Age-estimation models compared", introduction, findings, [], sections)

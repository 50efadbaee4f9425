"""Nodes of the report pipeline: thin wrappers over ``dex_bias.stats`` and ``dex_bias.report``."""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any

import pandas as pd
from PIL import Image

from dex_bias.report import figures
from dex_bias.report.html import Section, min_n_warnings, render_report, summary_of_findings
from dex_bias.stats.contract import PLAUSIBLE_AGE_RANGE, prepare_predictions
from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers
from dex_bias.stats.metrics import group_metrics, with_display_columns
from dex_bias.stats.paper import paper_correlation_table, paper_normality_table
from dex_bias.stats.significance import significance_tests

logger = logging.getLogger(__name__)


def _bands(params: dict[str, Any], key: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(low), int(high)) for low, high in params[key])


def _age_range(input_params: dict[str, Any]) -> tuple[float, float]:
    low, high = input_params.get("predicted_age_range") or PLAUSIBLE_AGE_RANGE
    return float(low), float(high)


def prepare_report_input(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check ``predictions`` against the input contract and keep the audited splits.

    Returns the audited rows and the quarantine (empty unless ``input.allow_quarantine``).
    Rows of other splits (e.g. the training split, on which the model looks better than it is)
    are left out, counted and logged; a table without ``split`` is audited whole.
    """
    source = predictions.attrs.get("source", "predictions")
    valid, quarantine = prepare_predictions(predictions, allow_quarantine=bool(params["input"]["allow_quarantine"]),
                                            source=source, age_range=_age_range(params["input"]),
                                            age_range_setting="report.input.predicted_age_range")
    splits = params["input"].get("splits")
    if splits and "split" in valid.columns:
        kept = valid["split"].astype(str).isin([str(s) for s in splits])
        logger.info("report: auditing %d rows of split(s) %s; %d rows of other splits left out (%s)",
                    kept.sum(), list(splits), (~kept).sum(), valid.loc[~kept, "split"].value_counts().to_dict())
        if not kept.any():
            raise ValueError(
                f"{source}: no row has split in {list(splits)} (splits present: "
                f"{sorted(valid['split'].astype(str).unique())}). Set report.input.splits to one of those, "
                "or to null to audit every row."
            )
        valid = valid[kept].reset_index(drop=True)
    return valid, quarantine


def compute_group_metrics(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Metric table for the audit bands and, for the age-band groupings, the article's bands."""
    common = dict(n_boot=params["bootstrap"]["n_boot"], seed=params["bootstrap"]["seed"],
                  confidence=params["confidence"], min_n=params["min_n"],
                  intersections=params["intersections"])
    audit = group_metrics(predictions, sensitive_features=params["sensitive_features"],
                          bands=_bands(params, "age_bands"), **common)
    article = group_metrics(predictions, sensitive_features=params["sensitive_features"],
                            bands=_bands(params, "paper_age_bands"), **common)
    article = article[article["grouping"].str.contains("age_band")]
    return pd.concat([audit.assign(band_scheme="audit"), article.assign(band_scheme="article")], ignore_index=True)


def compute_significance_tests(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """pingouin tests across races and genders (see ``dex_bias.stats.significance``)."""
    return significance_tests(
        predictions, features=params["test_features"], bands=_bands(params, "age_bands"),
        challenge_ages=params["challenge_ages"], min_n=params["test_min_n"],
        n_boot=params["bootstrap"]["n_boot"], seed=params["bootstrap"]["seed"],
        confidence=params["confidence"], alpha=params["alpha"],
    )


def compute_age_gates(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Challenge-age rates per group with Wilson CIs, and the buffer each group needs."""
    bands = _bands(params, "age_bands")
    rates = age_gate_metrics(predictions, challenge_ages=params["challenge_ages"], by=params["gate_features"],
                             intersections=params["intersections"], confidence=params["confidence"],
                             min_n=params["min_n"], bands=bands)
    buffers = challenge_age_buffers(predictions, by=params["gate_features"], targets=params["buffer_targets"],
                                    min_n=params["min_n"], bands=bands)
    return rates, buffers


def make_paper_normality_table(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The article's Appendix A (shape of predicted ages per race × gender × band)."""
    return paper_normality_table(predictions, bands=_bands(params, "paper_age_bands"))


def make_paper_correlation_table(predictions: pd.DataFrame, region_attributions: pd.DataFrame,
                                 params: dict[str, Any]) -> pd.DataFrame:
    """The article's Appendix B; empty when this run has no region attributions."""
    return paper_correlation_table(predictions, region_attributions, method=params["explanation_method"],
                                   bands=_bands(params, "paper_age_bands"),
                                   accurate_below=params["accurate_below_years"])


def mean_region_weights(predictions: pd.DataFrame, region_attributions: pd.DataFrame,
                        method: str, by: str) -> pd.DataFrame:
    """Mean LIME weight per group of ``by`` (rows) and facial region (columns)."""
    attributions = region_attributions
    if "method" in attributions:
        attributions = attributions[attributions["method"] == method]
    attributions = attributions.drop_duplicates(["image_id", "region"])[["image_id", "region", "weight"]]
    labelled = attributions.merge(with_display_columns(predictions)[["image_id", by]], on="image_id")
    return labelled.pivot_table(index=by, columns="region", values="weight", aggfunc="mean", observed=True)


def draw_figures(predictions: pd.DataFrame, age_gates: pd.DataFrame, region_attributions: pd.DataFrame,
                 params: dict[str, Any]) -> tuple[Image.Image, ...]:
    """Figures 4-5 (error and accuracy by race, by gender), gate rates, predicted vs true, heat map."""
    bands = _bands(params, "paper_age_bands")
    drawn = [
        figures.error_distributions(predictions, "race", bands),
        figures.error_distributions(predictions, "gender", bands),
        figures.gate_rates(age_gates, "race"),
        figures.predicted_vs_true(predictions, "race"),
    ]
    has_attributions = region_attributions is not None and not region_attributions.empty
    weights = (mean_region_weights(predictions, region_attributions, params["explanation_method"], "race")
               if has_attributions else pd.DataFrame())
    if weights.empty:
        drawn.append(figures.message_figure("Group attribution heat map",
                                            "No region attributions in this run (run the explain pipeline)."))
    else:
        drawn.append(figures.attribution_heatmap(weights, "Mean LIME weight of each facial region, by race"))
    return tuple(figures.figure_to_image(figure) for figure in drawn)


def _gender_table(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame | None:
    """The gender head's table from ``dex_bias.stats.gender`` when the module and column exist."""
    if "prob_female" not in predictions.columns or predictions["prob_female"].isna().all():
        return None
    try:
        from dex_bias.stats.gender import gender_metrics
    except ImportError:  # the gender module is optional: the age audit stands without it
        return None
    return gender_metrics(predictions, bands=_bands(params, "age_bands"), min_n=params["min_n"])


def build_audit_report(
    predictions: pd.DataFrame, quarantine: pd.DataFrame, group_metrics: pd.DataFrame,
    significance_tests: pd.DataFrame, age_gate_metrics: pd.DataFrame, challenge_age_buffers: pd.DataFrame,
    paper_normality_table: pd.DataFrame, paper_correlation_table: pd.DataFrame,
    figure_error_by_race: Image.Image, figure_error_by_gender: Image.Image, figure_age_gates: Image.Image,
    figure_predicted_vs_true: Image.Image, figure_attribution_heatmap: Image.Image, params: dict[str, Any],
) -> str:
    """The self-contained HTML audit report: findings in words, every table and figure."""
    alpha = params["alpha"]
    audit_metrics = group_metrics[group_metrics["band_scheme"] == "audit"]
    models = sorted(predictions["model_name"].astype(str).unique()) if "model_name" in predictions else []
    introduction = [
        html.escape(f"Made {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from {len(predictions)} predictions"
                    + (f" of model(s) {', '.join(models)}" if models else "")
                    + (f"; {quarantine['row'].nunique()} input rows set aside (table at the end)" if len(quarantine) else "")
                    + "."),
        html.escape("Error = predicted − true age, in years. Intervals are 95 % (bootstrap percentile for "
                    "errors, Wilson for rates). p-values are corrected for multiple comparisons "
                    "(Holm unless said otherwise)."),
    ]
    findings = summary_of_findings(audit_metrics, significance_tests, age_gate_metrics, challenge_age_buffers,
                                   alpha=alpha)
    main = audit_metrics[~audit_metrics["grouping"].str.contains("×")]
    sections = [
        Section("Errors by group", [html.escape(
            "MAE, median absolute error, mean signed error (bias), RMSE and the share of estimates within "
            "5 and 10 years, overall and per race, gender and age band. Balanced MAE is the mean over "
            "age-year × gender cells (NIST style), so groups with different age mixes compare fairly.")],
            figures=[("Predicted against true age by race", figure_predicted_vs_true)],
            tables=[("Group metrics (audit bands)", main, False),
                    ("Group metrics: intersections and the article's bands", group_metrics.drop(main.index), True)]),
        Section("Between-group tests", [html.escape(
            "Group against the rest: Mann–Whitney on the age-adjusted absolute error (absolute error minus the "
            "mean absolute error of everyone in the same age band), Holm-corrected over the groups of a feature. "
            "Within each age band: Kruskal–Wallis and Welch ANOVA (Holm over bands), pairwise Mann–Whitney "
            "(Holm) and Games–Howell. Chi-square tests of age-gate outcomes across groups. Groups too small "
            "for a test carry the status 'too_small'.")],
            tables=[(f"{family} tests", significance_tests[significance_tests["family"] == family],
                     family == "pairwise")
                    for family in ("group_vs_rest", "omnibus", "gate_chi_square", "pairwise")]),
        Section("Age verification: challenge ages", [html.escape(
            "Minors accepted: P(estimate ≥ τ | age < 18), and for ages 13–17 alone (teens). Adults challenged: "
            "P(estimate < τ | 18 ≤ age ≤ 24). Adults refused: P(estimate < 18 | age ≥ 18). Unrounded "
            "estimates. The buffer is the smallest whole-year challenge age at which at most the target share "
            "of a group's minors is accepted.")],
            figures=[("Gate rates by race with Wilson 95% intervals", figure_age_gates)],
            tables=[("Challenge-age buffers", challenge_age_buffers, False),
                    ("Gate rates", age_gate_metrics, True)]),
        Section("The article's figures and tables", [html.escape(
            "Figures 4–5 of the dex-model-analysis article: error and accuracy ((100 − |error|)/100) by race and "
            "by gender within the article's bands 0–12, 13–18, 19–25, 26–100. Appendix A: D'Agostino–Pearson K² "
            "and a chi-square goodness-of-fit against a uniform distribution of the rounded predicted ages per "
            "race × gender × band. These test the shape of the predicted-age distribution, not bias: a small p "
            "means 'not normal' or 'not uniform', and says nothing about who is estimated worse.")],
            figures=[("Error and accuracy by race (article Figure 4)", figure_error_by_race),
                     ("Error and accuracy by gender (article Figure 5)", figure_error_by_gender)],
            tables=[("Appendix A: normality of predicted ages", paper_normality_table, True)]),
    ]
    if paper_correlation_table.empty:
        sections.append(Section("Explanations", [html.escape(
            "No region attributions in this run: the explanation parts (Appendix B correlations, group heat "
            "maps) need the explain pipeline (kedro run --pipelines=explain,report).")]))
    else:
        sections.append(Section("Explanations", [html.escape(
            "Pearson r between each facial region's LIME weight and accuracy, per race × band, for accurate "
            f"(|error| < {params['accurate_below_years']} years) and inaccurate images, each image counted once; "
            "p adjusted for the false discovery rate (Benjamini–Hochberg) over the table.")],
            figures=[("Mean region weight by race (article Figures 6–7)", figure_attribution_heatmap)],
            tables=[("Appendix B: region weight vs accuracy", paper_correlation_table, True)]))
    gender = _gender_table(predictions, params)
    if gender is not None and not gender.empty:
        sections.append(Section("Gender head", [html.escape(
            "Accuracy of the model's gender output (prob_female ≥ 0.5 read as female) by race and age band, "
            "with Wilson 95 % intervals.")],
            tables=[("Gender metrics", gender[~gender["grouping"].str.contains("×")], False),
                    ("Gender metrics by intersection", gender[gender["grouping"].str.contains("×")], True)]))
    if len(quarantine):
        sections.append(Section("Input rows set aside", [], tables=[("Quarantine", quarantine, False)]))
    report = render_report("Age-estimation bias audit", introduction, findings, min_n_warnings(main), sections)
    logger.info("audit_report: %d findings, %d sections, %.1f kB", len(findings), len(sections), len(report) / 1024)
    return report

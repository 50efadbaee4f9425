"""Nodes of the report pipeline: thin wrappers over ``dex_bias.stats`` and ``dex_bias.report``."""

from __future__ import annotations

import datetime as dt
import html
import logging
from typing import Any

import pandas as pd
from PIL import Image

from dex_bias.report import figures
from dex_bias.report.html import (
    Section, min_n_warnings, not_computed, render_report, show_no_cases, summary_of_findings,
)
from dex_bias.stats.contract import PLAUSIBLE_AGE_RANGE, prepare_predictions
from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers
from dex_bias.stats.metrics import group_metrics, with_display_columns
from dex_bias.stats.paper import paper_correlation_table, paper_normality_table, region_weight_correlations
from dex_bias.stats.quality import quality_metrics, quality_summary
from dex_bias.stats.significance import significance_tests
from dex_bias.stats.verification import age_verification_metrics, group_spread

logger = logging.getLogger(__name__)


def _bands(params: dict[str, Any], key: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(low), int(high)) for low, high in params[key])


def _age_range(input_params: dict[str, Any]) -> tuple[float, float]:
    low, high = input_params.get("predicted_age_range") or PLAUSIBLE_AGE_RANGE
    return float(low), float(high)


def _outer(params: dict[str, Any], predictions: pd.DataFrame) -> str | None:
    """The outer grouping column (e.g. ``model_name``) when set and present, else None."""
    column = params.get("outer_grouping")
    if column and column not in predictions.columns:
        logger.warning("report.outer_grouping is %r but the predictions have no such column: tabled as one", column)
        return None
    return column or None


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
    if valid.empty:
        logger.warning("%s: no rows to audit; the report says what could not be computed", source)
    elif splits and "split" in valid.columns:
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
                  confidence=params["confidence"], min_n=params["min_n"], intersections=params["intersections"],
                  accuracy_within=params["accuracy_within"], outer=_outer(params, predictions),
                  balanced_bands=_bands(params, "balanced_mae_bands") if params.get("balanced_mae_bands") else None)
    audit = group_metrics(predictions, sensitive_features=params["sensitive_features"],
                          bands=_bands(params, "age_bands"), **common)
    article = group_metrics(predictions, sensitive_features=params["sensitive_features"],
                            bands=_bands(params, "paper_age_bands"), **common)
    article = article[article["grouping"].str.contains("age_band")]
    return pd.concat([audit.assign(band_scheme="audit"), article.assign(band_scheme="article")], ignore_index=True)


def compute_significance_tests(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Stratified permutation tests across races and genders (see ``dex_bias.stats.significance``)."""
    tests = params["tests"]
    return significance_tests(
        predictions, features=params["test_features"], outcomes=tests["outcomes"], bands=_bands(params, "age_bands"),
        challenge_ages=params["challenge_ages"], stratum_years=int(tests["stratum_years"]),
        gate_stratum_years=int(tests["gate_stratum_years"]), pairwise=bool(tests["pairwise"]),
        min_n=int(tests["min_n"]), n_perm=int(tests["n_perm"]), n_boot=params["bootstrap"]["n_boot"],
        seed=int(tests["seed"]), confidence=params["confidence"], alpha=params["alpha"],
        outer=_outer(params, predictions),
    )


def compute_age_gates(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Challenge-age rates per group with Wilson CIs, and the buffer each group needs."""
    bands = _bands(params, "age_bands")
    rates = age_gate_metrics(predictions, challenge_ages=params["challenge_ages"], by=params["gate_features"],
                             intersections=params["intersections"], confidence=params["confidence"],
                             min_n=params["min_n"], bands=bands, outer=_outer(params, predictions))
    buffers = challenge_age_buffers(predictions, by=params["gate_features"], targets=params["buffer_targets"],
                                    min_n=params["min_n"], bands=bands)
    return rates, buffers


def compute_age_verification(predictions: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NIST's age-verification rates per group, and the spread of every metric across groups."""
    bands = _bands(params, "age_bands")
    outer = _outer(params, predictions)
    rates = age_verification_metrics(predictions, params["age_verification"], by=params["gate_features"],
                                     intersections=params["intersections"], confidence=params["confidence"],
                                     min_n=params["min_n"], bands=bands, outer=outer)
    spread = group_spread(predictions, params["age_verification"], features=params["spread_features"],
                          accuracy_within=params["accuracy_within"], outer=outer,
                          balanced_bands=_bands(params, "balanced_mae_bands") if params.get("balanced_mae_bands")
                          else bands, n_boot=params["bootstrap"]["n_boot"], seed=params["bootstrap"]["seed"],
                          confidence=params["confidence"], min_n=params["min_n"], bands=bands)
    return rates, spread


def compute_image_quality(predictions: pd.DataFrame, landmarks: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """MAE by interocular-distance and head-yaw bins per group; empty when there are no landmarks."""
    quality = params["image_quality"]
    return quality_metrics(predictions, landmarks, by=params["gate_features"],
                           interocular_bins=int(quality["interocular_bins"]), yaw_edges=quality["yaw_edges"],
                           bands=_bands(params, "age_bands"), n_boot=params["bootstrap"]["n_boot"],
                           seed=params["bootstrap"]["seed"], confidence=params["confidence"], min_n=params["min_n"])


def make_paper_normality_table(predictions: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """The article's Appendix A (K² and the article's dispersion chi-square per race × gender × band)."""
    return paper_normality_table(predictions, bands=_bands(params, "paper_age_bands"))


def make_paper_correlation_table(predictions: pd.DataFrame, region_attributions: pd.DataFrame,
                                 params: dict[str, Any]) -> pd.DataFrame:
    """The article's Appendix B from its own method (quickshift rows); empty without such explanations."""
    article = params["article"]
    return paper_correlation_table(predictions, region_attributions, bands=_bands(params, "paper_age_bands"),
                                   accurate_above=float(article["accurate_above"]),
                                   renormalisation=str(article["renormalisation"]),
                                   method=str(article["explanation_method"]))


def make_region_weight_correlations(predictions: pd.DataFrame, region_attributions: pd.DataFrame,
                                    params: dict[str, Any]) -> pd.DataFrame:
    """Our correlations of each region's LIME weight with accuracy (not the article's table)."""
    return region_weight_correlations(predictions, region_attributions, method=params["explanation_method"],
                                      bands=_bands(params, "paper_age_bands"),
                                      accurate_above=float(params["article"]["accurate_above"]))


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
    """The gender head's table from ``dex_bias.stats.gender`` when the column has values."""
    if "prob_female" not in predictions.columns or predictions["prob_female"].isna().all():
        return None
    from dex_bias.stats.gender import gender_metrics

    return gender_metrics(predictions, bands=_bands(params, "age_bands"), min_n=params["min_n"])


def _words(text: str) -> list[str]:
    return [html.escape(text)]


def build_audit_report(
    predictions: pd.DataFrame, quarantine: pd.DataFrame, group_metrics: pd.DataFrame,
    significance_tests: pd.DataFrame, age_gate_metrics: pd.DataFrame, challenge_age_buffers: pd.DataFrame,
    age_verification_metrics: pd.DataFrame, group_spread: pd.DataFrame, image_quality_metrics: pd.DataFrame,
    landmarks: pd.DataFrame, paper_normality_table: pd.DataFrame, paper_correlation_table: pd.DataFrame,
    region_weight_correlations: pd.DataFrame,
    figure_error_by_race: Image.Image, figure_error_by_gender: Image.Image, figure_age_gates: Image.Image,
    figure_predicted_vs_true: Image.Image, figure_attribution_heatmap: Image.Image, params: dict[str, Any],
) -> str:
    """The self-contained HTML audit report: findings in words, every table and figure, and what
    could not be computed."""
    alpha = params["alpha"]
    tests = params["tests"]
    audit_metrics = group_metrics[group_metrics["band_scheme"] == "audit"]
    models = sorted(predictions["model_name"].astype(str).unique()) if "model_name" in predictions else []
    introduction = [
        html.escape(f"Made {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from {len(predictions)} predictions"
                    + (f" of model(s) {', '.join(models)}" if models else "")
                    + (f"; {quarantine['row'].nunique()} input rows set aside (table at the end)" if len(quarantine) else "")
                    + "."),
        html.escape("Error = predicted − true age, in years. Intervals are 95 % (bootstrap percentile for "
                    "errors and differences, Wilson for rates). Groups differ in age mix and error depends on age, "
                    f"so every test that compares groups does so within strata of {tests['stratum_years']} years of "
                    "true age × gender (single years for age-gate outcomes) and states the stratified difference it "
                    "tests; p-values come from permutations within those strata and are Holm-corrected over the "
                    "family each row names."),
    ]
    findings = summary_of_findings(audit_metrics, significance_tests, age_gate_metrics, challenge_age_buffers,
                                   alpha=alpha, verification=age_verification_metrics,
                                   stratum_years=int(tests["stratum_years"]))
    main = audit_metrics[~audit_metrics["grouping"].str.contains("×")]
    test_family = {family: significance_tests[significance_tests["family"] == family]
                   for family in ("group_vs_rest", "omnibus", "gate_vs_rest", "pairwise")}
    sections = [
        Section("Errors by group", _words(
            "MAE, median absolute error, mean signed error (bias), RMSE and Acc(x), the share of estimates within "
            "x years, overall and per race, gender and age band. Balanced MAE is the mean over fixed age band × "
            "gender reference cells (NIST style), with an interval resampled within each cell; a group lacking a "
            "reference cell has none, and the notes say which."),
            figures=[("Predicted against true age by race", figure_predicted_vs_true)],
            tables=[("Group metrics (audit bands)", show_no_cases(main), False),
                    ("Group metrics: intersections and the article's bands",
                     show_no_cases(group_metrics.drop(main.index)), True)]),
        Section("Between-group tests", _words(
            "Each group against everyone else (group_vs_rest), every pair of groups (pairwise), all groups of a "
            "feature at once (omnibus) and the age-gate outcomes (gate_vs_rest). The difference is stratum-"
            f"standardised: within each stratum of {tests['stratum_years']} years of true age × gender (age alone "
            "when comparing genders; single years for gate outcomes) the group's mean minus the others' mean, "
            "averaged with the group's own stratum sizes as weights. Its p-value comes from "
            f"{tests['n_perm']} permutations of the values within strata, its interval from a bootstrap of the "
            "same statistic, its direction from its sign. Holm corrects over the family named in each row "
            "(holm_family, holm_family_size): the groups of one feature for one outcome; the pairs of a feature; "
            "groups × challenge ages × measures for gate outcomes; the features for omnibus tests. A simulation "
            "harness in the test suite checks that each family rejects at its nominal rate when error depends "
            "on age only."),
            tables=[(f"{family} tests", frame, family in ("pairwise", "gate_vs_rest"))
                    for family, frame in test_family.items()]),
        Section("Age verification", _words(
            "Challenge ages: minors accepted, P(estimate ≥ τ | age < 18), and for ages 13–17 alone; young adults "
            "challenged, P(estimate < τ | 18 ≤ age ≤ 24); adults refused, P(estimate < 18 | age ≥ 18). NIST's "
            "measures: challenge-age false positives at a true age, the 13–16 classification (an estimate e reads as "
            "age ⌊e⌋), verification at the legal age with the threshold set on one reference group's minors and read "
            "for every group, and the spread of each metric across groups (max − min and Gini, with bootstrap "
            "intervals). Unrounded estimates; 'no cases' where a group has nobody a measure counts."),
            figures=[("Gate rates by race with Wilson 95% intervals", figure_age_gates)],
            tables=[("NIST age-verification measures", show_no_cases(age_verification_metrics), True),
                    ("Spread across groups", group_spread, False),
                    ("Challenge-age buffers", challenge_age_buffers, False),
                    ("Gate rates", show_no_cases(age_gate_metrics), True)]),
    ]
    if image_quality_metrics is None or image_quality_metrics.empty:
        sections.append(Section("Image quality", _words(
            "Not measured: this run has no landmarks (an audit of a CSV of estimates has no images), so interocular "
            "distance and head yaw could not be computed.")))
    else:
        sections.append(Section("Image quality", _words(
            "Interocular distance (pixels between the eye centres) and a head-yaw index (left-right asymmetry of the "
            "nose tip between the cheek edges, 0 frontal, ±1 profile) from the stored landmarks; MAE per quality bin "
            "and group. If a group's excess error persists within every quality bin, image quality does not explain "
            "it."),
            tables=[("Image quality by group", quality_summary(predictions, landmarks, by=params["gate_features"]), False),
                    ("MAE by image-quality bin and group", show_no_cases(image_quality_metrics), True)]))
    article = params["article"]
    sections.append(Section("The article's figures and tables", _words(
        "Figures 4–5 of the dex-model-analysis article: error and accuracy ((100 − |error|)/100) by race and by "
        "gender within the article's bands 0–12, 13–18, 19–25, 26–100. Appendix A, computed as the article did on "
        "predictions rounded like Python's round: D'Agostino–Pearson K² tests the shape (normality) of the "
        "predicted ages in a cell, and the article's chi-square is scipy's chisquare applied to the list of rounded "
        "predictions itself, i.e. the index of dispersion Σ(x − x̄)²/x̄ on n − 1 degrees of freedom. Both describe "
        "the shape and spread of the predicted ages, not bias: a small p says 'not normal' or 'more spread than "
        "Poisson counts', nothing about who is estimated worse."),
        figures=[("Error and accuracy by race (article Figure 4)", figure_error_by_race),
                 ("Error and accuracy by gender (article Figure 5)", figure_error_by_gender)],
        tables=[("Appendix A: shape and dispersion of predicted ages", paper_normality_table, True)]))
    if paper_correlation_table.empty:
        appendix_b = Section("Appendix B (the article's method)", _words(
            f"Not computed: no '{article['explanation_method']}' explanations in this run. The article's table needs "
            "LIME over quickshift segments (the explain pipeline's quickshift sample)."))
    else:
        appendix_b = Section("Appendix B (the article's method)", _words(
            "Pearson r between the article's five features (face: the mean share of the nine inner regions' pixels "
            "that LIME weighted positively; the four outer bands, left and right as seen in the image) and accuracy, "
            f"per race × band, for accurate images (accuracy > {article['accurate_above']}) and the rest; features "
            f"renormalised as the article did ({article['renormalisation']}). Each image counted once (the article "
            "repeated records of small cohorts); p adjusted for the false discovery rate over the table (ours)."),
            tables=[("Appendix B: article features vs accuracy", paper_correlation_table, True)])
    sections.append(appendix_b)
    if region_weight_correlations.empty:
        sections.append(Section("Explanations", _words(
            "No region attributions in this run: the explanation parts (region-weight correlations, group heat "
            "maps) need the explain pipeline (kedro run --pipelines=explain,report).")))
    else:
        sections.append(Section("Explanations", _words(
            "Ours, not the article's: Pearson r between each facial region's LIME surrogate weight (years of "
            f"expected age) and accuracy, per race × band, for accurate (accuracy > {article['accurate_above']}) and "
            "other images, each image counted once; p adjusted for the false discovery rate over the table."),
            figures=[("Mean region weight by race (article Figures 6–7)", figure_attribution_heatmap)],
            tables=[("Region weight vs accuracy (ours)", region_weight_correlations, True)]))
    gender = _gender_table(predictions, params)
    if gender is not None and not gender.empty:
        sections.append(Section("Gender head", _words(
            "Accuracy of the model's gender output (prob_female ≥ 0.5 read as female) by race and age band, "
            "with Wilson 95 % intervals."),
            tables=[("Gender metrics", gender[~gender["grouping"].str.contains("×")], False),
                    ("Gender metrics by intersection", gender[gender["grouping"].str.contains("×")], True)]))
    else:
        sections.append(Section("Gender head", _words(
            "Skipped: these predictions carry no gender estimate (prob_female is empty), so the model has no "
            "gender head (its declaration says gender: null) or the table came without one. The age audit above "
            "does not depend on it.")))
    missing = not_computed(group_metrics=audit_metrics, significance_tests=significance_tests,
                           age_gate_metrics=age_gate_metrics, age_verification_metrics=age_verification_metrics,
                           group_spread=group_spread, paper_normality_table=paper_normality_table)
    if not missing.empty:
        sections.append(Section("What could not be computed", _words(
            "Each line names a table, what is missing and why (too few faces, nobody a measure counts, one group "
            "only, no variation)."), tables=[("Not computed", missing, False)]))
    if len(quarantine):
        sections.append(Section("Input rows set aside", [], tables=[("Quarantine", quarantine, False)]))
    report = render_report("Age-estimation bias audit", introduction, findings, min_n_warnings(main), sections)
    logger.info("audit_report: %d findings, %d sections, %.1f kB", len(findings), len(sections), len(report) / 1024)
    return report

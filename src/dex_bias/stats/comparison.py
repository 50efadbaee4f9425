"""Several age models audited on the same faces: side-by-side metrics, spread across groups, paired tests.

- :func:`same_faces`: the long table of every model's estimates on the faces *all* models
  predicted (a model trained here predicts only its test split; the published models, every
  face), so that differences between models are never differences between face sets.
- :func:`model_metrics` / :func:`model_gate_metrics`: the audit's own tables
  (:func:`dex_bias.stats.metrics.group_metrics`, :func:`dex_bias.stats.gates.age_gate_metrics`)
  with the model as the engine's outer column: every model's groups side by side, with the same
  intervals (bootstrap for errors, Wilson for rates) from the same seeds.
- :func:`model_spread` / :func:`leaderboard`: how unequal each model is across the groups of a
  feature, as NIST's age-estimation report cards state it: max − min and the Gini coefficient of
  the group values, with bootstrap intervals (:func:`dex_bias.stats.engine.spread_frame`).
- :func:`paired_model_tests`: for each pair of models and each group, the Wilcoxon signed-rank
  test (scipy) of the paired differences in absolute error on the same images, its effect the
  matched-pairs rank-biserial correlation (the statistic the test ranks, so its sign gives the
  direction) with a bootstrap interval, the mean paired difference in years with its interval,
  and Holm's correction over every test of the table.
- :func:`region_attention`: where explanations exist, the mean LIME weight of each facial region
  per model and race.

References: Wilcoxon (1945), Biometrics Bull. 1(6); Kerby (2014), "The simple difference formula:
an approach to teaching nonparametric correlation", Comprehensive Psychology 3 (matched-pairs
rank-biserial); Holm (1979); Gini (1912); NIST IR 8525 (Hanaoka et al. 2024), the spread of
age-estimation error across demographic groups.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from dex_bias.explain.attributions import method_weights
from dex_bias.stats.engine import Estimation, Metric, spread_frame
from dex_bias.stats.gates import RATE, age_gate_metrics, gate_outcomes
from dex_bias.stats.metrics import ERROR_COLUMNS, group_metrics, mean_absolute_error, with_display_columns
from dex_bias.stats.significance import holm
from dex_bias.utkface import DEFAULT_AGE_BANDS

logger = logging.getLogger(__name__)

LABELS = ("age", "gender", "race")


def same_faces(predictions: Mapping[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model's estimates on the faces all of them predicted: ``(long table, coverage)``.

    Args:
        predictions: model key -> a contract-checked predictions table (``image_id``, ``age``,
            ``gender``, ``race``, ``predicted_age``; ``prob_female`` where the model has one).

    Returns:
        The long table (``model``, ``image_id``, labels, ``predicted_age``, ``prob_female``),
        in model order then image order, and the coverage: per model, faces predicted, faces
        compared, faces left out because another model did not predict them.

    Raises:
        ValueError: fewer than two models, no face common to all, or a face whose labels differ
            between the models' tables (they were not made from the same faces).
    """
    if len(predictions) < 2:
        raise ValueError(f"a comparison needs at least two models; got {list(predictions)}")
    common = None
    for table in predictions.values():
        ids = set(table["image_id"].astype(str))
        common = ids if common is None else common & ids
    if not common:
        raise ValueError(
            "the models' predictions have no face in common: were they made from the same `faces`? "
            f"({', '.join(f'{k}: {len(v)} rows' for k, v in predictions.items())})"
        )
    order = sorted(common)
    parts, coverage = [], []
    reference = None
    for model, table in predictions.items():
        kept = table.assign(image_id=table["image_id"].astype(str)).set_index("image_id").loc[order]
        labels = kept[list(LABELS)].astype(int)
        if reference is None:
            reference = labels
        elif not labels.equals(reference):
            differing = labels.index[(labels != reference).any(axis=1)][:3].tolist()
            raise ValueError(
                f"model {model!r} labels some faces differently from the others (e.g. {differing}): "
                "compare predictions made from the same `faces` version"
            )
        female = kept["prob_female"] if "prob_female" in kept else pd.Series(np.nan, index=kept.index)
        parts.append(
            pd.DataFrame(
                {
                    "model": model,
                    "image_id": order,
                    **{c: labels[c].to_numpy() for c in LABELS},
                    "predicted_age": kept["predicted_age"].to_numpy(float),
                    "prob_female": female.to_numpy(float),
                }
            )
        )
        coverage.append(
            {"model": model, "predicted": len(table), "compared": len(order), "left_out": len(table) - len(order)}
        )
    long = pd.concat(parts, ignore_index=True)
    logger.info("model comparison: %d faces predicted by all of %s", len(order), list(predictions))
    return long, pd.DataFrame(coverage)


def model_metrics(
    long: pd.DataFrame,
    *,
    features: Sequence[str] = ("race", "gender", "age_band"),
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """The audit's error metrics per model × group (single features), bootstrap intervals: ``group_metrics``
    with ``model`` as the outer column."""
    return group_metrics(long, sensitive_features=features, intersections=False, outer="model", estimation=estimation)


def model_gate_metrics(
    long: pd.DataFrame,
    *,
    challenge_ages: Sequence[float] = (18, 21, 25),
    features: Sequence[str] = ("race", "gender"),
    estimation: Estimation = Estimation(),
) -> pd.DataFrame:
    """The age-gate rates of ``age_gate_metrics`` per model × group (Wilson intervals)."""
    return age_gate_metrics(long, challenge_ages, features, intersections=False, outer="model", estimation=estimation)


def model_spread(
    long: pd.DataFrame,
    *,
    features: Sequence[str] = ("race", "gender"),
    estimation: Estimation = Estimation(),
    gate_measure: str = "minors_accepted",
    challenge_age: float = 25,
) -> pd.DataFrame:
    """Per model and feature: the spread across groups of MAE and of one gate rate (``gate_measure`` at
    ``challenge_age``), as ``engine.SPREAD_COLUMNS`` led by ``model``; groups below ``min_n`` left out."""
    table = with_display_columns(long, estimation.bands)
    common = dict(outer="model", estimation=estimation)
    counted, event = gate_outcomes(table, challenge_age, gate_measure)
    gate_name = f"{gate_measure} at {challenge_age:g}"
    return pd.concat(
        [
            spread_frame(table, {"mae": Metric(mean_absolute_error, ERROR_COLUMNS)}, features, **common),
            spread_frame(
                table.assign(event=event.astype(float), counted=counted),
                {gate_name: RATE},
                features,
                where="counted",
                **common,
            ),
        ],
        ignore_index=True,
    )


def leaderboard(metrics: pd.DataFrame, spread: pd.DataFrame) -> pd.DataFrame:
    """One row per model, most accurate first: overall MAE (CI), signed error, and per feature the
    spread of group MAE (max − min with its CI, Gini, the worst group) and of the gate rate."""
    overall = metrics[metrics["grouping"] == "overall"].set_index("model")
    rows = []
    for model in overall.index:
        row = {
            "model": model,
            "n": int(overall.loc[model, "n"]),
            "mae": overall.loc[model, "mae"],
            "mae_ci_low": overall.loc[model, "mae_ci_low"],
            "mae_ci_high": overall.loc[model, "mae_ci_high"],
            "mean_signed_error": overall.loc[model, "mean_signed_error"],
        }
        for item in spread[(spread["model"] == model) & (spread["status"] == "ok")].itertuples(index=False):
            prefix = f"{item.feature}_mae" if item.metric == "mae" else f"{item.feature}_gate"
            row.update(
                {
                    f"{prefix}_range": item.max_minus_min,
                    f"{prefix}_range_ci_low": item.max_minus_min_ci_low,
                    f"{prefix}_range_ci_high": item.max_minus_min_ci_high,
                    f"{prefix}_gini": item.gini,
                    f"{prefix}_worst_group": item.max_group,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows).sort_values("mae", kind="stable").reset_index(drop=True)


def region_attention(
    long: pd.DataFrame,
    region_attributions: Mapping[str, pd.DataFrame | None],
    *,
    method: str = "regions",
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """Which facial regions each model's estimate leans on, per race: the mean LIME weight.

    Args:
        long: the compared faces (:func:`same_faces`), for their race.
        region_attributions: model key -> its ``region_attributions`` (None or empty: the model
            has no explanations and no rows); ``method`` rows, each (image, region) once.

    Returns:
        ``model``, ``race`` (name), ``region``, ``mean_weight`` (years of expected age),
        ``images``: one row per model × race × region, models in the mapping's order.
    """
    columns = ["model", "race", "region", "mean_weight", "images"]
    labels = with_display_columns(long.drop_duplicates("image_id"), bands)[["image_id", "race"]]
    frames = []
    for model, table in region_attributions.items():
        if table is None or table.empty:
            continue
        rows = method_weights(table, method).merge(labels, on="image_id")
        summary = (
            rows.groupby(["race", "region"], observed=True)
            .agg(mean_weight=("weight", "mean"), images=("image_id", "nunique"))
            .reset_index()
        )
        frames.append(summary.assign(model=model))
    if not frames:
        return pd.DataFrame(columns=columns)
    result = pd.concat(frames, ignore_index=True)
    result["race"] = result["race"].astype(str)
    return result[columns]


def rank_biserial(differences: np.ndarray) -> np.ndarray:
    """Matched-pairs rank-biserial correlation of paired differences, along the last axis.

    ``(T⁺ − T⁻) / (T⁺ + T⁻)`` with the ranks of ``|d|`` (zero differences dropped, ties averaged):
    +1 when every pair favours the first sample's larger value, −1 the reverse (Kerby 2014).
    """
    d = np.asarray(differences, dtype=float)
    ranks = st.rankdata(np.where(d == 0, np.nan, np.abs(d)), axis=-1, nan_policy="omit")
    ranks = np.where(d == 0, 0.0, ranks)
    positive = np.where(d > 0, ranks, 0.0).sum(axis=-1)
    negative = np.where(d < 0, ranks, 0.0).sum(axis=-1)
    total = positive + negative
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (positive - negative) / total, np.nan)


def paired_model_tests(
    long: pd.DataFrame,
    *,
    features: Sequence[str] = ("race", "gender", "age_band"),
    estimation: Estimation = Estimation(min_n=10),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests of ``|error_a| − |error_b|`` on the same images, per pair of models × group.

    For each pair ``(model_a, model_b)`` (in the order models appear) and each group (overall and
    the groups of each feature): ``n`` pairs, ``statistic`` (scipy's W), ``p_unc``,
    ``rank_biserial`` (> 0: model_a's absolute errors are larger, i.e. model_a is worse) with a
    percentile-bootstrap interval, ``mean_difference`` (years, a − b) with its interval, then
    ``p_corr`` (Holm over every test of the table) and ``verdict``: which model has the smaller
    errors in that group, read from the sign of the rank-biserial correlation when Holm's p is
    below ``alpha``, else ``no difference shown``. Groups with fewer than ``estimation.min_n`` pairs get
    status ``too_small`` and no test.
    """
    table = with_display_columns(long, estimation.bands)
    table["absolute_error"] = (table["predicted_age"] - table["age"]).abs()
    wide = table.pivot_table(index="image_id", columns="model", values="absolute_error", observed=True)
    labels = table.drop_duplicates("image_id").set_index("image_id")[list(features)].loc[wide.index]
    models = list(dict.fromkeys(long["model"]))
    groupings: list[tuple[str, str, np.ndarray]] = [("overall", "all", np.ones(len(wide), bool))]
    for feature in features:
        column = labels[feature]
        values = (
            column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else sorted(column.dropna().unique())
        )
        for value in values:
            mask = (column == value).to_numpy()
            if mask.any():
                groupings.append((feature, str(value), mask))
    rng_seed = itertools.count(estimation.seed)
    rows = []
    for model_a, model_b in itertools.combinations(models, 2):
        differences_all = (wide[model_a] - wide[model_b]).to_numpy(float)
        for grouping, group, mask in groupings:
            d = differences_all[mask]
            row = {"model_a": model_a, "model_b": model_b, "grouping": grouping, "group": group, "n": int(len(d))}
            if len(d) < estimation.min_n or not np.any(d != 0):
                rows.append(
                    dict(
                        row,
                        status=f"too_small (n={len(d)} < {estimation.min_n})"
                        if len(d) < estimation.min_n
                        else "no_difference (identical errors)",
                    )
                )
                continue
            test = st.wilcoxon(d)
            rng = np.random.default_rng(next(rng_seed))
            alpha_ci = (1 - estimation.confidence) / 2
            effects, means = [], []
            block = max(1, min(estimation.n_boot, 2_000_000 // len(d)))
            for start in range(0, estimation.n_boot, block):
                sample = d[rng.integers(0, len(d), (min(block, estimation.n_boot - start), len(d)))]
                effects.append(rank_biserial(sample))
                means.append(sample.mean(axis=1))
            effects, means = np.concatenate(effects), np.concatenate(means)
            rows.append(
                dict(
                    row,
                    statistic=float(test.statistic),
                    p_unc=float(test.pvalue),
                    rank_biserial=float(rank_biserial(d)),
                    rank_biserial_ci_low=float(np.nanquantile(effects, alpha_ci)),
                    rank_biserial_ci_high=float(np.nanquantile(effects, 1 - alpha_ci)),
                    mean_difference=float(d.mean()),
                    mean_difference_ci_low=float(np.quantile(means, alpha_ci)),
                    mean_difference_ci_high=float(np.quantile(means, 1 - alpha_ci)),
                    status="ok",
                )
            )
    result = pd.DataFrame(rows)
    tested = result["status"] == "ok"
    result["p_corr"] = np.nan
    result.loc[tested, "p_corr"] = holm(result.loc[tested, "p_unc"].to_numpy(float))
    result["correction"] = np.where(tested, f"holm over {int(tested.sum())} tests", "")

    def verdict(row) -> str:
        if row["status"] != "ok":
            return ""
        if not row["p_corr"] < alpha:
            return "no difference shown"
        better = row["model_b"] if row["rank_biserial"] > 0 else row["model_a"]
        return f"{better} has smaller errors"

    result["verdict"] = result.apply(verdict, axis=1) if len(result) else []
    columns = [
        "model_a",
        "model_b",
        "grouping",
        "group",
        "n",
        "statistic",
        "p_unc",
        "p_corr",
        "correction",
        "rank_biserial",
        "rank_biserial_ci_low",
        "rank_biserial_ci_high",
        "mean_difference",
        "mean_difference_ci_low",
        "mean_difference_ci_high",
        "verdict",
        "status",
    ]
    return result.reindex(columns=columns)

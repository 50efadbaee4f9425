"""The report pipeline in-process on a tiny catalog (spaceflights style): every output made,
explanation sections present when attributions are, absent and said so when they are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import MemoryDataset

from dex_bias.pipelines.report.pipeline import create_pipeline
from dex_bias.report.datasets import OptionalDataset
from dex_bias.stats.paper import INNER_REGIONS, OUTER_FEATURES
from tests.conftest import base_parameters, run_in_process
from tests.stats.conftest import synthetic_landmarks, synthetic_predictions

REGIONS = ["nose", "mouth", "chin", "left_cheek"]


def _params():
    # The split filter is exercised here; the default audits every row.
    return base_parameters(
        {"report.bootstrap.n_boot": 100, "report.tests.n_perm": 500, "report.input.splits": ["test"]}
    ).report


def _run(predictions: pd.DataFrame, attributions, landmarks) -> dict:
    return run_in_process(
        create_pipeline(),
        {
            "predictions": predictions,
            "params:report": _params(),
            "region_attributions": attributions,
            "landmarks": landmarks,
        },
    )


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    df = synthetic_predictions(700, seed=31, race_bias={2: 5.0})
    df["split"] = np.where(np.arange(len(df)) % 4 == 0, "train", "test")
    df["prob_female"] = np.clip(df["gender"] * 0.8 + 0.1 + np.random.default_rng(0).normal(0, 0.2, len(df)), 0, 1)
    return df


def test_with_attributions_and_landmarks_every_section_is_made(predictions):
    rng = np.random.default_rng(5)
    regions = pd.DataFrame(
        [(i, "regions", r, rng.normal()) for i in predictions.image_id for r in REGIONS],
        columns=["image_id", "method", "region", "weight"],
    )
    quickshift = pd.DataFrame(
        [
            (i, "quickshift", r, rng.uniform())
            for i in predictions.image_id
            for r in [*INNER_REGIONS, *OUTER_FEATURES.values(), "background"]
        ],
        columns=["image_id", "method", "region", "weight"],
    )
    landmarks = synthetic_landmarks(predictions.image_id, seed=6)
    out = _run(predictions, MemoryDataset(pd.concat([regions, quickshift])), MemoryDataset(landmarks))
    audited = (predictions.split == "test").sum()
    metrics = out["group_metrics"]
    assert metrics.loc[(metrics.grouping == "overall") & (metrics.band_scheme == "audit"), "n"].iloc[0] == audited
    assert {"audit", "article"} == set(metrics.band_scheme)
    assert set(out["region_weight_correlations"].region) == set(REGIONS)
    assert set(out["paper_correlation_table"].feature) == {"face", *OUTER_FEATURES}
    assert out["figure_attribution_heatmap"].size[0] > 300
    quality = out["image_quality_metrics"]
    assert set(quality.covariate) == {"interocular_distance", "yaw_index"}
    assert quality.loc[quality.grouping == "overall", "n"].sum() == 2 * audited
    report = out["audit_report"]
    assert "Appendix B: article features vs accuracy" in report and "No region attributions" not in report
    assert "Region weight vs accuracy (ours)" in report and "MAE by image-quality bin and group" in report
    assert "Gender head" in report  # dex_bias.stats.gender with prob_female present
    assert "carry no gender estimate" not in report
    assert report.count("data:image/png;base64,") == 5
    assert set(out["significance_tests"].family) == {"omnibus", "pairwise", "group_vs_rest", "gate_vs_rest"}
    assert not out["age_gate_metrics"].empty and not out["challenge_age_buffers"].empty
    assert set(out["age_verification_metrics"].metric) == {
        "challenge_false_positive",
        "age_range_estimate",
        "verification_minors_pass",
        "verification_adults_fail",
    }
    assert {"mae", "balanced_mae", "within_5"} <= set(out["group_spread"].metric)


def test_without_attributions_or_landmarks_the_report_says_so(predictions, tmp_path):
    def absent(name, columns):
        return OptionalDataset(
            dataset={"type": "pandas.ParquetDataset", "filepath": str(tmp_path / name)}, columns=columns
        )

    out = _run(
        predictions.drop(columns=["prob_female"]),
        absent("none.parquet", ["image_id", "method", "region", "weight"]),
        absent("no_landmarks.parquet", ["image_id"]),
    )
    assert out["paper_correlation_table"].empty and out["region_weight_correlations"].empty
    assert out["image_quality_metrics"].empty
    report = out["audit_report"]
    assert "No region attributions in this run" in report
    assert "Skipped: these predictions carry no gender estimate" in report  # a model without a gender head
    assert "Not measured: this run has no landmarks" in report
    assert "Not computed: no 'quickshift' explanations" in report
    assert "Asian faces have a mean absolute error" in report

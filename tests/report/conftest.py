"""Every table and figure the two reports read, made once per session in-process (no kedro run).

- ``audit_outputs``: the report pipeline's outputs on 1,200 synthetic predictions in which the
  race "Others" is estimated 6 years too old, with a gender head, region attributions (ours and
  the article's quickshift rows) and landmarks, so every section of the audit report has data.
- ``comparison_outputs``: the compare pipeline's tables and figures for two models on the same
  faces (a "vendor" model 9 years noisy and 6 years too old for Indian faces, missing 100 faces).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.paper import INNER_REGIONS, OUTER_FEATURES
from tests.conftest import base_parameters, base_settings, run_in_process
from tests.stats.conftest import VENDOR, synthetic_landmarks, synthetic_predictions, two_models


def report_parameters():
    """The report parameters with fewer bootstrap draws and permutations (same code paths)."""
    return base_parameters({"report.bootstrap.n_boot": 100, "report.tests.n_perm": 500}).report


@pytest.fixture(scope="session")
def audit_outputs() -> dict:
    from dex_bias.pipelines.report.pipeline import create_pipeline

    predictions = synthetic_predictions(1200, seed=41, race_bias={4: 6.0})
    rng = np.random.default_rng(7)
    predictions["prob_female"] = np.clip(predictions["gender"] * 0.8 + 0.1 + rng.normal(0, 0.2, len(predictions)), 0, 1)
    regions = pd.DataFrame(
        [
            (i, "regions", r, rng.normal())
            for i in predictions.image_id[:300]
            for r in ("nose", "mouth", "chin", "left_cheek")
        ],
        columns=["image_id", "method", "region", "weight"],
    )
    quickshift = pd.DataFrame(
        [
            (i, "quickshift", r, rng.uniform())
            for i in predictions.image_id[:300]
            for r in [*INNER_REGIONS, *OUTER_FEATURES.values(), "background"]
        ],
        columns=["image_id", "method", "region", "weight"],
    )
    landmarks = synthetic_landmarks(predictions.image_id, seed=6)
    out = run_in_process(
        create_pipeline(),
        {
            "predictions": predictions,
            "params:report": report_parameters(),
            "region_attributions": pd.concat([regions, quickshift], ignore_index=True),
            "landmarks": landmarks,
        },
    )
    out["landmarks"] = landmarks
    out["params"] = report_parameters()
    return out


@pytest.fixture(scope="session")
def comparison_outputs() -> dict:
    from dex_bias.pipelines.compare import nodes

    trained, vendor, attributions = two_models()
    report_params, compare_params = report_parameters(), base_parameters().compare
    models_params = base_settings("models", audit=["trained", "vendor"], declarations={"vendor": VENDOR})
    compared, coverage = nodes.collect_predictions(report_params, trained=trained, vendor=vendor)
    metrics, gates = nodes.compare_metrics(compared, report_params, compare_params)
    spread = nodes.measure_spread(compared, report_params, compare_params)
    attention = nodes.compare_region_attention(
        compared, report_params, trained=attributions, vendor=attributions.iloc[:0]
    )
    figure_mae, figure_gates, figure_regions = nodes.draw_comparison_figures(metrics, gates, attention, compare_params)
    return {
        "coverage": coverage,
        "leaderboard": nodes.rank_models(metrics, spread),
        "spread": spread,
        "metrics": metrics,
        "gates": gates,
        "paired": nodes.test_model_pairs(compared, report_params, compare_params),
        "attention": attention,
        "figure_mae": figure_mae,
        "figure_gates": figure_gates,
        "figure_regions": figure_regions,
        "report_params": report_params,
        "compare_params": compare_params,
        "models_params": models_params,
    }


def audit_context(outputs: dict, params=None, **changes):
    """The audit report's context from ``audit_outputs`` (``changes`` replace tables by name,
    ``params`` the report parameters)."""
    from dex_bias.pipelines.report.pipeline import FIGURES, TABLES
    from dex_bias.report.context import AuditFigures, AuditTables, audit_report_context

    tables = {name: outputs[name] for name in TABLES}
    tables.update(
        predictions=outputs["report_predictions"],
        quarantine=outputs["report_input_quarantine"],
        landmarks=outputs["landmarks"],
    )
    tables.update(changes)
    figures = AuditFigures(**{name: outputs[f"figure_{name}"] for name in AuditFigures.__dataclass_fields__})
    assert set(FIGURES) == {f"figure_{name}" for name in AuditFigures.__dataclass_fields__}
    return audit_report_context(AuditTables(**tables), figures, params or outputs["params"])


def comparison_context(outputs: dict):
    """The comparison report's context from ``comparison_outputs``."""
    from dex_bias.pipelines.compare.nodes import comparison_settings
    from dex_bias.report.comparison import (
        ComparisonTables,
        comparison_report_context,
        model_declarations,
    )

    tables = ComparisonTables(
        **{name: outputs[name] for name in ComparisonTables.__dataclass_fields__ if name != "declarations"},
        declarations=model_declarations(outputs["coverage"]["model"], outputs["models_params"]),
    )
    settings = comparison_settings(outputs["report_params"], outputs["compare_params"])
    return comparison_report_context(
        tables, [outputs["figure_mae"], outputs["figure_gates"], outputs["figure_regions"]], settings
    )


@pytest.fixture(scope="session")
def audit_report(audit_outputs):
    return audit_context(audit_outputs)


@pytest.fixture(scope="session")
def audit_html(audit_report) -> str:
    from dex_bias.report.context import render_audit_report

    return render_audit_report(audit_report)


@pytest.fixture(scope="session")
def comparison_report(comparison_outputs):
    return comparison_context(comparison_outputs)


@pytest.fixture(scope="session")
def comparison_html(comparison_report) -> str:
    from dex_bias.report.comparison import render_comparison_report

    return render_comparison_report(comparison_report)

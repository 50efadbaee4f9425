"""One branch per audited model, and the compare pipeline in-process on a tiny catalog."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import REPO_ROOT, base_parameters, run_in_process
from tests.stats.conftest import VENDOR, synthetic_predictions, two_models


def test_each_declared_model_gets_its_own_branch_sharing_faces_and_landmarks(audited_models_config):
    from dex_bias.pipeline_registry import register_pipelines

    audited_models_config(audit=["trained", "dlib_age_v1"])
    pipelines = register_pipelines()
    branch = pipelines["dlib_age_v1"]
    assert {
        "faces",
        "landmarks",
        "dlib_age_v1.age_model",
        "params:infer",
        "params:explain",
        "params:report",
    } <= branch.inputs()
    assert {
        "dlib_age_v1.predictions",
        "dlib_age_v1.region_attributions",
        "dlib_age_v1.audit_report",
    } <= branch.all_outputs()
    assert not {"predictions", "age_model", "audit_report"} & (branch.inputs() | branch.all_outputs())
    # The registered pipelines hold both models' branches; the default also trains, corrects and compares.
    assert {"predictions", "dlib_age_v1.predictions"} <= pipelines["infer"].all_outputs()
    default = pipelines["__default__"]
    assert {"age_model", "correction_model", "model_comparison_report"} <= default.all_outputs()
    assert default.inputs() & {"dlib_age_v1.age_model"} and "faces" not in default.inputs()

    audited_models_config(audit=["dlib_age_v1"])  # a published model alone: nothing to train or compare
    alone = register_pipelines()
    assert (
        not {"age_model", "correction_model", "model_comparison_report", "predictions"}
        & alone["__default__"].all_outputs()
    )
    assert "compare" not in alone and "train" in alone  # train stays runnable on its own


def test_a_declared_models_branch_runs_on_its_own_predictions_with_the_shared_parameters(audited_models_config):
    from dex_bias.pipeline_registry import register_pipelines

    audited_models_config(audit=["trained", "dlib_age_v1"])
    branch = register_pipelines()["dlib_age_v1"]
    metrics_slice = branch.from_nodes("dlib_age_v1.report.prepare_report_input").to_nodes(
        "dlib_age_v1.report.compute_group_metrics"
    )
    assert metrics_slice.inputs() == {"dlib_age_v1.predictions", "params:report"}
    predictions = synthetic_predictions(300, seed=4)
    made = run_in_process(
        metrics_slice, {"dlib_age_v1.predictions": predictions}, base_parameters({"report.bootstrap.n_boot": 100})
    )
    assert set(made) == {
        "dlib_age_v1.report_predictions",
        "dlib_age_v1.report_input_quarantine",
        "dlib_age_v1.group_metrics",
    }
    metrics = made["dlib_age_v1.group_metrics"]
    overall = metrics[(metrics.grouping == "overall") & (metrics.band_scheme == "audit")].iloc[0]
    assert overall.n == len(predictions)
    assert overall.mae == pytest.approx((predictions.predicted_age - predictions.age).abs().mean())


def test_the_compare_pipeline_puts_the_models_side_by_side(audited_models_config):
    from dex_bias.pipelines.compare.pipeline import create_pipeline

    audited_models_config(audit=["trained", "vendor"], declarations={"vendor": VENDOR})
    # the vendor's table misses 100 faces: they are left out of the comparison
    trained, vendor, attributions = two_models()
    parameters = base_parameters({"report.bootstrap.n_boot": 100})
    out = run_in_process(
        create_pipeline(),
        {
            "predictions": trained,
            "vendor.predictions": vendor,
            "region_attributions": attributions,
            "vendor.region_attributions": attributions.iloc[:0],
            "params:models": replace(parameters.models, audit=["trained", "vendor"], declarations={"vendor": VENDOR}),
        },
        parameters,
    )

    coverage = out["model_coverage"].set_index("model")
    assert coverage.loc["trained", "left_out"] == 100 and (coverage["compared"] == 700).all()
    board = out["model_leaderboard"]
    assert board["model"].tolist() == ["trained", "vendor"]
    assert board.set_index("model").loc["vendor", "race_mae_worst_group"] == "Indian"
    paired = out["model_paired_tests"].set_index(["grouping", "group"])
    assert paired.loc[("overall", "all"), "verdict"] == "trained has smaller errors"
    assert paired.loc[("race", "Indian"), "rank_biserial"] < 0  # trained (a) smaller errors than vendor (b)
    attention = out["model_region_attention"]
    assert set(attention["model"]) == {"trained"} and set(attention["region"]) == {"nose", "mouth", "chin"}
    report = out["model_comparison_report"]
    assert "Age-estimation models compared" in report and "Most accurate overall: trained" in report
    assert "Fairest across race groups" in report and report.count("data:image/png;base64,") == 3


def test_every_persisted_output_of_a_model_branch_has_its_dataset_factory():
    """A pipeline that gains a persisted output must add its "{model}.<name>" factory (catalog_models.yml)."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog, MemoryDataset

    from dex_bias.hooks import project_pipelines
    from dex_bias.pipeline_registry import PER_MODEL

    config = OmegaConfigLoader(str(REPO_ROOT / "conf"), base_env="base", default_run_env="local")["catalog"]
    catalog = DataCatalog.from_config({name: entry for name, entry in config.items() if not name.startswith("_")})
    folders = project_pipelines()
    persisted = {
        name
        for pipeline in PER_MODEL
        for name in folders[pipeline].all_outputs()
        if name in config and config[name].get("type") != "MemoryDataset"
    }
    assert {"predictions", "region_attributions", "audit_report"} <= persisted
    for name in sorted(persisted):
        dataset = catalog.get(f"some_model.{name}")
        assert dataset is not None and not isinstance(dataset, MemoryDataset), f"no factory for {{model}}.{name}"
        assert type(dataset).__name__ == type(catalog.get(name)).__name__, name
        assert "some_model" in str(dataset._describe()), f"{{model}}.{name} does not put the model in its path"

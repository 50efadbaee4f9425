"""The explain pipeline: in-process on stand-in inputs (fast), then end to end on the demo run."""

from __future__ import annotations

import pandas as pd
import pytest

from dex_bias.explain.attributions import ATTRIBUTION_COLUMNS
from dex_bias.explain.regions import REGION_NAMES
from tests.conftest import base_parameters, base_settings, rendered_faces, run_in_process, run_kedro

N_FACES = 10


def _params():
    return base_parameters(
        {
            "explain.lime.num_samples": 120,
            "explain.lime.batch_size": 256,
            "explain.quickshift.sample_size": 3,
            "explain.quality.sample_size": 2,
            "explain.quality.stability_seeds": 2,
            "explain.quality.random_orders": 2,
        }
    ).explain


@pytest.fixture(scope="module")
def stand_in_inputs(tmp_path_factory):
    """faces, landmarks (the renderer's own 68 points), predictions and an untrained compact model."""
    from dex_bias.models import build_model

    faces, marks = rendered_faces(tmp_path_factory.mktemp("explain_faces"), N_FACES, seed=5)
    landmarks = marks.iloc[1:].reset_index(drop=True)  # the first face's alignment "failed"
    predictions = faces[["image_id", "age", "gender", "race", "split"]].iloc[:-1].copy()  # the last: no prediction
    predictions["predicted_age"] = 30.0
    model = build_model("compact")
    return faces, landmarks, predictions, model


SYNCHRONOUS = base_settings("dask", synchronous=True, progress=False)


def _run(stand_in_inputs, params, dask=SYNCHRONOUS, store=None):
    from dex_bias.pipelines.explain.pipeline import create_pipeline

    faces, landmarks, predictions, model = stand_in_inputs
    return run_in_process(
        create_pipeline(),
        {
            "faces": faces,
            "landmarks": landmarks,
            "predictions": predictions,
            "age_model": model,
            "params:explain": params,
            "params:dask": dask,
            "explain_chunks": store,
        },
    )


def test_pipeline_on_stand_ins(stand_in_inputs):
    faces = stand_in_inputs[0]
    out = _run(stand_in_inputs, _params())
    attributions, failures = out["region_attributions"], out["explanation_failures"]
    # counts reconcile: every face is explained or skipped with its reason
    assert set(attributions["image_id"]) | set(failures["image_id"]) == set(faces["image_id"])
    assert dict(zip(failures["image_id"], failures["reason"])) == {
        faces["image_id"].iloc[0]: "no_landmarks",
        faces["image_id"].iloc[-1]: "no_prediction",
    }
    regions = attributions[attributions["method"] == "regions"]
    assert regions["image_id"].nunique() == N_FACES - 2
    assert (regions.groupby("image_id")["region"].apply(list) == [list(REGION_NAMES)] * (N_FACES - 2)).all()
    assert set(ATTRIBUTION_COLUMNS) <= set(attributions.columns)
    assert attributions["weight"].notna().all() and (regions["weight"] != 0).any()
    assert attributions.loc[attributions["region_empty"], "weight"].eq(0).all()
    quick = attributions[attributions["method"] == "quickshift"]
    assert quick["image_id"].nunique() == 3 and quick["weight"].between(0, 1).all()
    quality = out["explanation_quality"]
    assert len(quality) == 2 and quality[["auc_attribution", "auc_random", "auc_gap"]].notna().all().all()
    group = out["group_attributions"]
    means = (
        regions.merge(faces[["image_id", "age_band"]])
        .groupby(["race", "gender", "age_band", "region"])["weight"]
        .mean()
    )
    check = group.set_index(["race", "gender", "age_band", "region"])["mean_weight"]
    pd.testing.assert_series_equal(check.sort_index(), means.sort_index(), check_names=False)
    # the same run seed gives the same weights
    again = _run(stand_in_inputs, _params())["region_attributions"]
    pd.testing.assert_frame_equal(again, attributions)


@pytest.mark.slow
def test_explain_alone_after_the_demo_run_writes_a_new_version(demo_run):
    folder = demo_run / "data" / "07_model_output" / "region_attributions.parquet"
    first = sorted(p.name for p in folder.iterdir())
    assert len(first) == 1
    old = pd.read_parquet(folder / first[0] / "region_attributions.parquet")
    # A smaller rerun (the suite's time is shared): a stratified 10 images, 150 samples each.
    run_kedro(
        demo_run,
        "--pipelines=explain",
        "--params",
        "explain.max_images=10,explain.lime.num_samples=150,explain.quickshift.sample_size=2,"
        "explain.quality.sample_size=2",
    )
    second = sorted(p.name for p in folder.iterdir())
    assert len(second) == 2 and first[0] in second
    assert pd.read_parquet(folder / first[0] / "region_attributions.parquet").equals(old)  # old version untouched
    new = pd.read_parquet(folder / second[-1] / "region_attributions.parquet")
    assert new.loc[new["method"] == "regions", "image_id"].nunique() == 10
    predictions_dir = demo_run / "data" / "07_model_output" / "predictions.parquet"
    latest_predictions = sorted(predictions_dir.iterdir())[-1] / "predictions.parquet"
    assert set(new["image_id"]) <= set(pd.read_parquet(latest_predictions)["image_id"])
    for name in (
        "group_attribution_maps.png",
        "facial_regions.png",
        "explanation_quality.csv",
        "group_attributions.csv",
    ):
        assert len(list((demo_run / "data" / "08_reporting" / name).iterdir())) == 2, name
    failures = demo_run / "data" / "07_model_output" / "explanation_failures.csv"
    assert len(list(failures.iterdir())) == 2

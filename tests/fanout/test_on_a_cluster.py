"""Align, infer and explain on a real ``distributed.LocalCluster`` of 2 worker processes give exactly the
tables of a synchronous run in this process, for the Keras model made in the run and a declared ONNX model.

The pipelines run in-process (Kedro's ``SequentialRunner`` over memory datasets), their per-image
work fanned out as the ``dask`` parameters say; the chunk stores are real folders.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fanout.conftest import CLUSTER, SYNCHRONOUS, run_flow

#: Dask LocalCluster runs of three pipelines: minutes on 2 cores.
pytestmark = pytest.mark.slow

TABLES = (
    "landmarks",
    "alignment_failures",
    "predictions",
    "inference_failures",
    "region_attributions",
    "explanation_failures",
    "explanation_quality",
    "group_attributions",
)


def test_align_infer_and_explain_on_a_local_cluster_equal_a_synchronous_run(demo_faces, compact_model, tmp_path):
    from dex_bias.fanout import close_clusters

    flow = ["align", "infer", "explain"]
    inputs = {"faces": demo_faces, "age_model": compact_model}
    serial = run_flow(flow, inputs, SYNCHRONOUS, tmp_path / "serial")
    close_clusters()  # a fresh cluster: nothing cached from another test
    fanned = run_flow(flow, inputs, CLUSTER, tmp_path / "cluster")
    for name in TABLES:
        pd.testing.assert_frame_equal(fanned[name], serial[name], check_exact=True, obj=name)
    # The run did real work on every stage: faces aligned, predicted and explained over several chunks each.
    landmarks, predictions, attributions = serial["landmarks"], serial["predictions"], serial["region_attributions"]
    assert len(landmarks) >= 20 and len(landmarks) + len(serial["alignment_failures"]) == len(demo_faces)
    assert len(predictions) + len(serial["inference_failures"]) == len(demo_faces)
    assert attributions.loc[attributions["method"] == "regions", "image_id"].nunique() == len(predictions)
    assert attributions.loc[attributions["method"] == "quickshift", "image_id"].nunique() == 4
    assert len(serial["explanation_quality"]) == 3
    # Each stage wrote its chunks as they finished; both engines wrote the same chunks.
    for store in ("infer", "explain"):
        serial_store = tmp_path / "serial" / store
        names = sorted(p.relative_to(serial_store) for p in serial_store.rglob("*.json"))
        assert names == sorted(
            p.relative_to(tmp_path / "cluster" / store) for p in (tmp_path / "cluster" / store).rglob("*.json")
        )
        assert len([n for n in names if n.name != "recipe.json"]) >= 3


def test_a_declared_onnx_model_is_opened_on_each_worker_and_predicts_as_here(demo_faces, tmp_path):
    """dlib's ONNX age model, re-opened on the workers from its declaration (checksum checked there)."""
    from dex_bias.models.registry import published_models
    from dex_bias.models.runtime import load_estimator

    estimator = load_estimator(published_models()["dlib_age_v1"])
    aligned = run_flow(["align"], {"faces": demo_faces}, SYNCHRONOUS, tmp_path / "align")
    inputs = {"faces": demo_faces, "landmarks": aligned["landmarks"], "age_model": estimator}
    serial = run_flow(["infer", "explain"], inputs, SYNCHRONOUS, tmp_path / "serial")
    fanned = run_flow(["infer", "explain"], inputs, CLUSTER, tmp_path / "cluster")
    for name in ("predictions", "inference_failures", "region_attributions", "explanation_quality"):
        pd.testing.assert_frame_equal(fanned[name], serial[name], check_exact=True, obj=name)
    assert (serial["predictions"]["model_name"] == "dlib_age_v1").all()
    assert serial["predictions"]["prob_female"].notna().all()  # its separate gender network ran too

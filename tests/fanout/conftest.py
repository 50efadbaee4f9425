"""Fixtures of the fan-out tests: demo faces made by ingest, a seeded compact model, and the align, infer
and explain pipelines run in-process on any engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import base_parameters, base_settings, run_in_process

#: Changes to the base ``dask`` parameters.
SYNCHRONOUS = {"synchronous": True, "progress": False}
CLUSTER = {"workers": 2, "progress": False, "dashboard_address": None}


def fan_out(**changes):
    """The base ``dask`` parameters with ``changes``."""
    return base_settings("dask", **changes)


def small_params(changes: dict | None = None):
    """The base parameters with chunks small enough that 24 faces make several tasks of each stage
    (``changes``: more dotted keys)."""
    return base_parameters(
        {
            "align.chunk_size": 4,
            "infer.batch_size": 4,
            "infer.chunk_size": 8,
            "infer.splits": "all",
            "explain.chunk_size": 3,
            "explain.lime.num_samples": 100,
            "explain.lime.batch_size": 64,
            "explain.quickshift.sample_size": 4,
            "explain.quality.sample_size": 3,
            "explain.quality.stability_seeds": 2,
            "explain.quality.random_orders": 2,
            **(changes or {}),
        }
    )


@pytest.fixture(scope="module")
def demo_faces(tmp_path_factory) -> pd.DataFrame:
    """24 demo faces, made and screened by the ingest pipeline."""
    from dex_bias.pipelines.ingest.pipeline import create_pipeline

    folder = tmp_path_factory.mktemp("cluster_demo") / "demo_faces"
    parameters = base_parameters(
        {"ingest.image_dir": str(folder), "ingest.demo.output_dir": str(folder), "ingest.demo.count": 24}
    )
    return run_in_process(create_pipeline(), parameters=parameters)["faces"]


@pytest.fixture(scope="module")
def compact_model():
    """A compact model as the train pipeline hands it on: seeded weights and a provenance card."""
    import keras

    from dex_bias.models import build_model
    from dex_bias.models.weights import set_model_card

    keras.utils.set_random_seed(7)
    model = build_model("compact")
    set_model_card(model, {"backbone": "compact", "source": "trained_here", "trained_splits": ["train"]})
    return model


def run_flow(pipelines: list[str], inputs: dict, dask: dict, stores: Path) -> dict[str, object]:
    """Run the named pipelines in-process with :func:`small_params` (``dask``: changes to its ``dask``;
    ``inputs`` may replace a ``params:`` input); every dataset they touch, by name."""
    from kedro.pipeline import Pipeline

    from dex_bias.fanout import ChunkStore
    from dex_bias.hooks import project_pipelines

    every = project_pipelines()
    pipeline = sum((every[name] for name in pipelines), Pipeline([]))
    values = {
        "params:dask": fan_out(**dask),
        "infer_chunks": ChunkStore(stores / "infer"),
        "explain_chunks": ChunkStore(stores / "explain"),
        **inputs,
    }
    return run_in_process(
        pipeline, {name: value for name, value in values.items() if name in pipeline.datasets()}, small_params()
    )

"""Fixtures of the fan-out tests: demo faces made by ingest, a seeded compact model, and the align, infer
and explain pipelines run in-process on any engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT, KeptDataset

CONF = REPO_ROOT / "conf" / "base"
SYNCHRONOUS = {"synchronous": True, "progress": False}
CLUSTER = {"workers": 2, "progress": False, "dashboard_address": None}


def base(name: str) -> dict:
    return yaml.safe_load((CONF / f"parameters_{name}.yml").read_text())[name]


def small_params() -> dict[str, dict]:
    """The base parameters with chunks small enough that 24 faces make several tasks of each stage."""
    align = {**base("align"), "chunk_size": 4}
    infer = {**base("infer"), "batch_size": 4, "chunk_size": 8, "splits": "all"}
    explain = base("explain")
    explain.update(chunk_size=3)
    explain["lime"].update(num_samples=100, batch_size=64)
    explain["quickshift"].update(sample_size=4)
    explain["quality"].update(sample_size=3, stability_seeds=2, random_orders=2)
    return {"align": align, "infer": infer, "explain": explain}


@pytest.fixture(scope="module")
def demo_faces(tmp_path_factory) -> pd.DataFrame:
    """24 demo faces, made and screened by the ingest pipeline."""
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    from dex_bias.pipelines.ingest.pipeline import create_pipeline

    folder = tmp_path_factory.mktemp("cluster_demo") / "demo_faces"
    ingest = base("ingest")
    ingest["image_dir"] = str(folder)
    ingest["demo"].update(output_dir=str(folder), count=24)
    pipeline = create_pipeline()
    catalog = DataCatalog({name: KeptDataset(copy_mode="assign") for name in pipeline.datasets()})
    catalog["params:ingest"] = KeptDataset(ingest, copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    return catalog.load("faces")


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
    """Run the named pipelines in-process; every dataset they touch, by name."""
    from kedro.io import DataCatalog
    from kedro.pipeline import Pipeline
    from kedro.runner import SequentialRunner

    from dex_bias.fanout import ChunkStore
    from dex_bias.hooks import project_pipelines

    every = project_pipelines()
    pipeline = sum((every[name] for name in pipelines), Pipeline([]))
    catalog = DataCatalog({name: KeptDataset(copy_mode="assign") for name in pipeline.datasets()})
    values = {**{f"params:{name}": value for name, value in small_params().items()}, "params:dask": dask,
              "infer_chunks": ChunkStore(stores / "infer"), "explain_chunks": ChunkStore(stores / "explain"),
              **inputs}
    for name, value in values.items():
        if name in pipeline.datasets():
            catalog[name] = KeptDataset(value, copy_mode="assign")
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.datasets()}



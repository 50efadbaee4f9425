"""An explain run stopped midway, then run again, computes only the images it had not done and ends with
exactly the tables of an uninterrupted run; a worker killed midway is replaced and changes nothing."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest

from dex_bias.fanout import ChunkStore
from tests.fanout.conftest import CLUSTER, SYNCHRONOUS, fan_out, run_flow, small_params

#: Each test aligns, predicts and explains 24 faces, then explains them again two or three times
#: (two of them on a LocalCluster). The chunk store's own rules are tested fast in test_store.py
#: and test_engine.py.
pytestmark = pytest.mark.slow


class StoppingStore(ChunkStore):
    """A real chunk store whose ``regions`` stage stops the run (as Ctrl-C would) once ``after`` chunks
    are written, and which records every chunk written through it."""

    def __init__(self, root, after: int | None = None):
        super().__init__(root)
        self.after = after
        self.written: dict[str, list[tuple[str, tuple]]] = {}

    def stage(self, name, recipe):
        stage = super().stage(name, recipe)
        original = stage.write
        written = self.written.setdefault(name, [])

        def write(key, tables, **kwargs):
            made = original(key, tables, **kwargs)
            written.append((key, tuple(tables[next(iter(tables))]["image_id"].unique())))
            if name == "regions" and self.after is not None and len(written) >= self.after:
                raise KeyboardInterrupt(f"stopped after {len(written)} chunks")
            return made

        stage.write = write
        return stage


@pytest.fixture(scope="module")
def explain_inputs(demo_faces, compact_model, tmp_path_factory):
    """faces, landmarks and predictions of the demo faces (made synchronously), and the model."""
    made = run_flow(
        ["align", "infer"],
        {"faces": demo_faces, "age_model": compact_model},
        SYNCHRONOUS,
        tmp_path_factory.mktemp("explain_inputs"),
    )
    return {
        "faces": demo_faces,
        "landmarks": made["landmarks"],
        "predictions": made["predictions"],
        "age_model": compact_model,
    }


OUTPUTS = ("region_attributions", "explanation_failures", "explanation_quality", "group_attributions")


def run_explain(inputs, store, dask=CLUSTER):
    return run_flow(["explain"], {**inputs, "explain_chunks": store}, dask, store.root)


def test_an_explain_run_stopped_after_some_chunks_resumes_with_only_the_missing_images(explain_inputs, tmp_path):
    whole = run_explain(explain_inputs, ChunkStore(tmp_path / "uninterrupted"))

    first = StoppingStore(tmp_path / "resumed", after=3)
    with pytest.raises(KeyboardInterrupt):
        run_explain(explain_inputs, first)
    done_first = first.written["regions"]
    assert len(done_first) == 3
    stage_folder = next((tmp_path / "resumed" / "regions").iterdir())
    kept = {path: path.read_bytes() for path in stage_folder.glob("*.parquet")}

    again = StoppingStore(tmp_path / "resumed")
    resumed = run_explain(explain_inputs, again)
    targets = whole["explain_targets"]["image_id"].tolist()
    computed = [image for _, images in again.written["regions"] for image in images]
    before = [image for _, images in done_first for image in images]
    # Only the images the first run had not finished were computed, each once.
    assert sorted(computed) == sorted(set(targets) - set(before)) and len(computed) == len(set(computed))
    assert not {key for key, _ in again.written["regions"]} & {key for key, _ in done_first}
    # Nothing the first run wrote was rewritten.
    assert {path: path.read_bytes() for path in kept} == kept
    for name in OUTPUTS:
        pd.testing.assert_frame_equal(resumed[name], whole[name], check_exact=True, obj=name)
    # A third run finds every chunk done and computes nothing at all.
    third = StoppingStore(tmp_path / "resumed")
    run_explain(explain_inputs, third)
    assert third.written and not any(third.written.values())


def test_other_parameters_or_another_model_never_reuse_a_chunk(explain_inputs, tmp_path):
    import keras

    from dex_bias.models import build_model

    store = StoppingStore(tmp_path / "store")
    run_explain(explain_inputs, store, SYNCHRONOUS)
    chunks = len(store.written["regions"])
    reseeded = StoppingStore(tmp_path / "store")
    params = small_params({"explain.seed": small_params().explain.seed + 1}).explain
    run_flow(
        ["explain"], {**explain_inputs, "explain_chunks": reseeded, "params:explain": params}, SYNCHRONOUS, tmp_path
    )
    assert len(reseeded.written["regions"]) == chunks  # a new seed: everything computed again
    keras.utils.set_random_seed(8)
    other = StoppingStore(tmp_path / "store")
    run_explain({**explain_inputs, "age_model": build_model("compact")}, other, SYNCHRONOUS)
    assert len(other.written["regions"]) == chunks  # another model's weights: everything again


def test_a_worker_killed_midway_is_replaced_and_the_run_ends_with_the_same_tables(explain_inputs, tmp_path):
    from dex_bias.explain import tasks
    from dex_bias.fanout.engine import _ACTIVE
    from dex_bias.pipelines.explain.nodes import select_images

    settings = small_params().explain
    targets, _ = select_images(
        explain_inputs["predictions"], explain_inputs["landmarks"], explain_inputs["faces"], settings
    )
    model = explain_inputs["age_model"]
    reference, _ = tasks.explain("regions", targets, model, settings, fan_out(**SYNCHRONOUS), chunk_size=2)

    store = ChunkStore(tmp_path / "killed")
    killed = []

    def kill_one_worker_after_the_first_chunk():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if list((tmp_path / "killed").rglob("*.json"))[1:]:  # recipe.json and a first chunk
                client = _ACTIVE["client"]
                pids = client.run(os.getpid)
                victim = sorted(pids.items())[0]
                os.kill(victim[1], signal.SIGKILL)
                killed.append(victim)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker_after_the_first_chunk, daemon=True)
    killer.start()
    attributions, _ = tasks.explain(
        "regions", targets, model, settings, fan_out(**CLUSTER, retries=0), chunk_size=2, store=store
    )
    killer.join(timeout=5)
    assert killed, "no worker was killed: the run ended before its first chunk was written"
    pd.testing.assert_frame_equal(attributions, reference, check_exact=True)
    assert attributions["image_id"].nunique() == len(targets)

"""The chunk store: keys change with anything a chunk computes from, nothing is overwritten, half-written
chunks do not count."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dex_bias.fanout import ChunkStore, fingerprint, rows_fingerprint
from tests.conftest import base_parameters


def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": ["a.jpg", "b.jpg"],
            "path": ["/x/a.jpg", "/x/b.jpg"],
            "predicted_age": [31.25, 40.0],
            "age": [30, 41],
            "x_00": [10.5, np.nan],
        }
    )


def test_a_chunk_key_changes_with_any_value_row_order_or_column_and_not_otherwise():
    key = rows_fingerprint(rows())
    assert key == rows_fingerprint(rows().copy())
    changed = rows()
    changed.loc[1, "predicted_age"] = 40.000000001  # a tiny change to one prediction
    assert rows_fingerprint(changed) != key
    assert rows_fingerprint(rows().iloc[::-1].reset_index(drop=True)) != key
    assert rows_fingerprint(rows().rename(columns={"x_00": "x_01"})) != key
    assert rows_fingerprint(rows().assign(path=["/y/a.jpg", "/x/b.jpg"])) != key


def test_a_recipe_fingerprint_reads_settings_dataclasses_and_ignores_mapping_order():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    lime = base_parameters().explain.lime
    assert fingerprint(replace(lime, num_samples=100)) != fingerprint(replace(lime, num_samples=101))
    assert fingerprint({"seed": 1}) != fingerprint({"seed": 2})


def test_chunks_are_written_once_read_back_exactly_and_kept_apart_by_recipe(tmp_path):
    store = ChunkStore(tmp_path)
    stage = store.stage("regions", {"model": "m1", "seed": 1})
    table = rows()
    assert not stage.has("k1")
    assert stage.write("k1", {"attributions": table, "failures": table.iloc[:0]}, items=2, seconds=0.5)
    assert stage.has("k1") and stage.done() == {"k1"}
    back = stage.read("k1")
    pd.testing.assert_frame_equal(back["attributions"], table)
    assert len(back["failures"]) == 0
    # Written again (another run computed the same chunk): nothing is replaced.
    files = {path: path.read_bytes() for path in stage.folder.iterdir()}
    mtimes = {path: path.stat().st_mtime_ns for path in files}
    assert not stage.write("k1", {"attributions": table.assign(age=0), "failures": table.iloc[:0]}, items=2)
    assert {path: path.read_bytes() for path in stage.folder.iterdir()} == files
    assert {path: path.stat().st_mtime_ns for path in files} == mtimes
    # Another seed or model is another recipe: its folder holds none of these chunks.
    assert store.stage("regions", {"model": "m1", "seed": 2}).done() == set()
    assert store.stage("regions", {"model": "m2", "seed": 1}).done() == set()
    assert store.stage("regions", {"model": "m1", "seed": 1}).done() == {"k1"}
    assert "seed" in (stage.folder / "recipe.json").read_text()


def test_a_chunk_whose_manifest_was_never_written_is_not_done(tmp_path):
    stage = ChunkStore(tmp_path).stage("infer", {"model": "m"})
    rows().to_parquet(stage.folder / "k2.predictions.parquet")  # a run stopped before the manifest
    assert not stage.has("k2") and stage.done() == set()
    assert stage.write("k2", {"predictions": rows()}, items=2)
    assert stage.has("k2")


def test_a_chunk_result_that_is_not_tables_is_refused_by_name(tmp_path):
    stage = ChunkStore(tmp_path).stage("infer", {"model": "m"})
    with pytest.raises(TypeError, match="predictions"):
        stage.write("k3", {"predictions": [1, 2]}, items=2)

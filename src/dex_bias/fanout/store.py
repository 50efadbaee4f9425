"""An append-only store of chunk results, keyed by what each chunk computes.

Layout, under the store's root (one per pipeline and model, from the catalog)::

    <root>/<stage>/<recipe fingerprint>/recipe.json              what every chunk here shares
    <root>/<stage>/<recipe fingerprint>/<chunk key>.<table>.parquet
    <root>/<stage>/<recipe fingerprint>/<chunk key>.json         written last: the chunk is done

The *recipe* is everything a stage's chunks share that changes their results: the model's
checksum (or the fingerprint of its weights), the settings, and :data:`SCHEMA`; the *chunk key*
is a fingerprint of the chunk's own input rows (image ids, paths, landmarks, labels, …). So a
chunk is reused only when the same rows meet the same model and settings, and a chunk written by
other inputs or parameters is never read.

Nothing already written is overwritten: each file is written under a temporary name and linked
into place only when no file holds that name (a chunk that exists holds the same result). A chunk
counts as done only when its ``.json`` manifest exists, which is written after its tables, so a
run stopped while writing leaves the chunk to be redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Bumped when the code of a resumable stage changes what its chunks hold.
SCHEMA = 1


def _plain(value: Any) -> Any:
    """A JSON-able, order-stable form of settings (dataclasses, tuples, numpy scalars, paths)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **{k: _plain(v) for k, v in asdict(value).items()}}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def fingerprint(*parts: Any) -> str:
    """BLAKE2b (hex, 32 characters) of a JSON rendering of ``parts`` (settings, dataclasses, dicts)."""
    text = json.dumps([_plain(part) for part in parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def rows_fingerprint(rows: pd.DataFrame) -> str:
    """BLAKE2b (hex, 32 characters) of a table's columns and values, in their order.

    Numbers are hashed as their float64 / int64 bytes (exact), text as UTF-8; so two tables get
    the same key only when they hold the same values in the same rows and columns.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{len(rows)}|".encode())
    for name in rows.columns:
        column = rows[name]
        digest.update(f"{name}:{column.dtype.kind}|".encode())
        if column.dtype.kind in "fc":
            digest.update(np.ascontiguousarray(column.to_numpy(np.float64, na_value=np.nan)).tobytes())
        elif column.dtype.kind in "iub":
            digest.update(np.ascontiguousarray(column.to_numpy(np.int64)).tobytes())
        else:
            digest.update("\x1f".join("\x00" if pd.isna(v) else str(v) for v in column).encode("utf-8"))
    return digest.hexdigest()


def _write_new(path: Path, write) -> bool:
    """Write a file through ``write(temporary path)`` and link it to ``path`` unless ``path`` exists.

    Returns True when this call made the file. Never replaces an existing file.
    """
    if path.exists():
        return False
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)


class StageStore:
    """The chunks of one stage under one recipe (see the module docstring)."""

    def __init__(self, folder: Path, stage: str, recipe: Mapping[str, Any], recipe_key: str):
        self.folder = folder
        self.stage = stage
        self.recipe = dict(recipe)
        self.recipe_key = recipe_key
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_new(
            self.folder / "recipe.json",
            lambda path: path.write_text(
                json.dumps({"stage": stage, "schema": SCHEMA, "recipe": _plain(self.recipe)}, indent=2, sort_keys=True)
            ),
        )

    def _manifest(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def has(self, key: str) -> bool:
        """Whether the chunk ``key`` was written completely."""
        return self._manifest(key).is_file()

    def done(self) -> set[str]:
        """Keys of every complete chunk here."""
        return {path.stem for path in self.folder.glob("*.json") if path.name != "recipe.json"}

    def write(self, key: str, tables: Mapping[str, pd.DataFrame], *, items: int, seconds: float | None = None) -> bool:
        """Write a chunk's tables, then its manifest; returns False when the chunk was already here."""
        if self.has(key):
            return False
        counts = {}
        for name, table in tables.items():
            if not isinstance(table, pd.DataFrame):
                raise TypeError(
                    f"chunk {key} of {self.stage}: table {name!r} is a {type(table).__name__}, not a DataFrame"
                )
            _write_new(
                self.folder / f"{key}.{name}.parquet", lambda path, table=table: table.to_parquet(path, index=False)
            )
            counts[name] = len(table)
        manifest = {
            "key": key,
            "stage": self.stage,
            "items": int(items),
            "tables": counts,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "task_seconds": seconds,
        }
        return _write_new(self._manifest(key), lambda path: path.write_text(json.dumps(manifest, indent=2)))

    def read(self, key: str) -> dict[str, pd.DataFrame]:
        """A complete chunk's tables, by name."""
        manifest = json.loads(self._manifest(key).read_text())
        return {name: pd.read_parquet(self.folder / f"{key}.{name}.parquet") for name in manifest["tables"]}

    def __repr__(self) -> str:
        return f"StageStore({self.folder})"


class ChunkStore:
    """A folder of resumable stage results (see the module docstring); ``root`` is created on first write."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def stage(self, name: str, recipe: Mapping[str, Any]) -> StageStore:
        """The store of stage ``name`` under ``recipe`` (what its chunks share)."""
        recipe_key = fingerprint(SCHEMA, name, recipe)
        return StageStore(self.root / name / recipe_key, name, recipe, recipe_key)

    def __repr__(self) -> str:
        return f"ChunkStore({self.root})"


def concat_tables(
    results: Sequence[Mapping[str, pd.DataFrame]], name: str, empty: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Table ``name`` of every chunk, one after another (chunks with no rows add none)."""
    frames = [result[name] for result in results if name in result and len(result[name])]
    if frames:
        return pd.concat(frames, ignore_index=True)
    if empty is not None:
        return empty
    schemas = [result[name] for result in results if name in result]
    return schemas[0].iloc[:0].reset_index(drop=True) if schemas else pd.DataFrame()

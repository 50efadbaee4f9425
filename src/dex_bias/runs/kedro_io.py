"""Kedro's datasets seen as files and versions: the one place that reads Kedro's dataset internals.

Kedro keeps a versioned dataset's path and version in private attributes (``_filepath``,
``_version``) of ``AbstractVersionedDataset``, which every kedro-datasets file dataset and this
project's own datasets subclass. The run ledger needs them (which folder a run writes, which
version an input reads), so they are read here and nowhere else. A wrapper dataset (this
project's ``OptionalDataset``) offers the dataset that holds its files as ``files_dataset``;
Kedro's ``CachedDataset`` keeps it as ``_dataset``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.io import MemoryDataset
from kedro.io.core import AbstractDataset, AbstractVersionedDataset, Version, VersionNotFoundError

from dex_bias.runs.ledger import file_fingerprints

logger = logging.getLogger(__name__)

LOCAL_PROTOCOLS = ("file", "local", None)


def is_parameter(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


@dataclass
class StoredDataset:
    """A catalog entry that keeps its data in files (not in memory, not a parameter)."""

    name: str
    dataset: AbstractDataset  # as the catalog holds it
    files: AbstractDataset  # the dataset that reads and writes the files

    @property
    def filepath(self) -> Path | None:
        """The local path Kedro reads (for a versioned dataset: the folder of versions)."""
        path = getattr(self.files, "_filepath", None)
        if path is None or getattr(self.files, "_protocol", None) not in LOCAL_PROTOCOLS:
            return None
        return Path(str(path))

    @property
    def versioned(self) -> bool:
        return isinstance(self.files, AbstractVersionedDataset) and getattr(self.files, "_version", None) is not None

    @property
    def optional(self) -> bool:
        """The run can go on without it (``OptionalDataset``): a version that does not belong is left out."""
        return bool(getattr(self.dataset, "optional", False))

    def versions(self) -> list[str]:
        """The versions on disk, newest first ([] when there are none)."""
        if not self.versioned:
            return []
        try:
            return list(self.files.list_versions(full_path=False))  # type: ignore[attr-defined]
        except VersionNotFoundError:
            return []

    def version_folder(self, version: str) -> Path | None:
        return None if self.filepath is None else self.filepath / version

    def read_version(self) -> str | None:
        """The version a load reads now: the one pinned, else the newest (None: none, or unversioned)."""
        if not self.versioned:
            return None
        try:
            return self.files.resolve_load_version()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no version (VersionNotFoundError) or an unreadable folder
            return None

    def pin(self, version: str) -> None:
        """Read ``version`` from now on (in place: the runner uses this very object)."""
        files: Any = self.files
        files._version = Version(version, files._version.save)
        files._cached_load_version = None

    def leave_out(self, reason: str) -> None:
        """An optional input that does not belong with the others: loads as absent."""
        self.dataset.leave_out(reason)  # type: ignore[attr-defined]

    @property
    def left_out(self) -> str | None:
        return getattr(self.dataset, "left_out_reason", None)

    def content_version(self) -> str | None:
        """``sha256:<hex>`` of an unversioned local file (its identity for provenance); None if absent."""
        if self.filepath is None or not self.filepath.exists():
            return None
        prints = file_fingerprints(self.filepath)
        if len(prints) == 1:
            return "sha256:" + prints[0]["sha256"]
        import hashlib

        return "sha256:" + hashlib.sha256("".join(p["sha256"] for p in prints).encode()).hexdigest()

    def identity(self) -> str | None:
        """What this run reads: the version stamp, or the content fingerprint of an unversioned file."""
        return self.read_version() if self.versioned else self.content_version()


def stored_dataset(catalog: Any, name: str) -> StoredDataset | None:
    """The catalog's dataset ``name`` when it keeps its data in files; None for memory and parameters."""
    if is_parameter(name):
        return None
    try:
        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
    except TypeError:  # an older catalog without runtime patterns
        dataset = catalog.get(name)
    if dataset is None:
        return None
    files = dataset
    for _ in range(3):  # unwrap CachedDataset / OptionalDataset
        inner = getattr(files, "files_dataset", None) or getattr(files, "_dataset", None)
        if inner is None:
            break
        files = inner
    if isinstance(files, MemoryDataset) or type(files).__name__ in ("MemoryDataset", "SharedMemoryDataset"):
        return None
    if getattr(files, "_filepath", None) is None:
        return None
    return StoredDataset(name, dataset, files)


def hint_path(dataset: Any, stamp: str) -> tuple[str, bool] | None:
    """Where a user puts a dataset's file by hand so Kedro reads it: ``(path, versioned)``."""
    stored = StoredDataset("", dataset, getattr(dataset, "files_dataset", None) or dataset)
    if stored.filepath is None:
        return None
    if stored.versioned:
        return (stored.filepath / stamp / stored.filepath.name).as_posix(), True
    return stored.filepath.as_posix(), False

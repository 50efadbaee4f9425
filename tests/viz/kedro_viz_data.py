"""Reading a project the way Kedro-Viz draws it: the ``kedro viz build`` data and the catalog.

Used by the lineage test (the graph), the browser test (a server to open) and the notebook test
(a read-only view of the demo run). Nothing here is a test itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

#: What a dataset's files hold, judged by the file suffix, and the Kedro-Viz preview type that
#: shows it (kedro_datasets._typing). Models and pickles have no natural preview.
PREVIEW_FOR_SUFFIX = {
    ".parquet": "TablePreview",
    ".csv": "TablePreview",
    ".xlsx": "TablePreview",
    ".json": "JSONPreview",
    ".png": "ImagePreview",
    ".jpg": "ImagePreview",
    ".jpeg": "ImagePreview",
}
#: Previews that are welcome but whose absence only gets reported, not failed.
OPTIONAL_PREVIEW_FOR_SUFFIX = {".html": "HTMLPreview", ".svg": "ImagePreview"}


def _subprocess_env() -> dict[str, str]:
    return dict(os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def build_viz(project: Path, *, include_previews: bool = False, timeout: float = 600) -> Path:
    """Run ``kedro viz build`` in ``project`` and return its ``build`` folder.

    ``kedro viz build`` reports its own failures as a message with exit status 0, so success is
    judged by the ``api/main`` file it writes; on failure the test fails with the output.
    """
    build = project / "build"
    shutil.rmtree(build, ignore_errors=True)
    command = [sys.executable, "-m", "kedro", "viz", "build"]
    if include_previews:
        command.append("--include-previews")
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=timeout, env=_subprocess_env())
    output = done.stdout + done.stderr
    if done.returncode != 0 or not (build / "api" / "main").is_file():
        hint = ""
        if "more than one node" in output or "OutputNotUniqueError" in output:
            hint = (
                "two nodes write the same dataset name: give each dataset one maker "
                "(CONTRIBUTING.md, 'which pipeline makes each dataset')\n"
            )
        pytest.fail(f"`kedro viz build` failed in {project}:\n{hint}{output[-12000:]}")
    return build


@dataclass
class VizGraph:
    """The flowchart data of a Kedro-Viz build (``api/main``) and the per-node metadata."""

    build: Path
    main: dict = field(init=False)

    def __post_init__(self) -> None:
        self.main = json.loads((self.build / "api" / "main").read_text())

    @cached_property
    def nodes_by_id(self) -> dict[str, dict]:
        return {node["id"]: node for node in self.main["nodes"]}

    @cached_property
    def pipeline_names(self) -> set[str]:
        return {pipeline["id"] for pipeline in self.main["pipelines"]}

    def tasks(self, pipeline: str | None = None) -> list[dict]:
        """Task (function) nodes, of one registered pipeline when named."""
        return [
            node
            for node in self.main["nodes"]
            if node["type"] == "task" and (pipeline is None or pipeline in node["pipelines"])
        ]

    @cached_property
    def datasets(self) -> dict[str, dict]:
        """Data nodes (not parameters) by dataset name."""
        return {node["name"]: node for node in self.main["nodes"] if node["type"] == "data"}

    def _namespace_of(self, task: dict) -> str:
        namespaces = task.get("modular_pipelines") or []
        return namespaces[0].split(".")[0] if namespaces else "<no namespace>"

    def _datasets_by_namespace(self, writes: bool) -> dict[str, set[str]]:
        """Datasets each namespace's tasks write (edges task -> data) or read (data -> task)."""
        found: dict[str, set[str]] = {}
        for edge in self.main["edges"]:
            source, target = self.nodes_by_id[edge["source"]], self.nodes_by_id[edge["target"]]
            task, data = (source, target) if writes else (target, source)
            if task["type"] == "task" and data["type"] == "data":
                found.setdefault(self._namespace_of(task), set()).add(data["name"])
        return found

    @cached_property
    def outputs_by_pipeline(self) -> dict[str, set[str]]:
        """Datasets each namespace's tasks write (edges task -> data)."""
        return self._datasets_by_namespace(writes=True)

    @cached_property
    def inputs_by_pipeline(self) -> dict[str, set[str]]:
        """Datasets each namespace's tasks read (edges data -> task)."""
        return self._datasets_by_namespace(writes=False)

    def node_metadata(self, node_id: str) -> dict:
        """``api/nodes/<id>``: type, filepath, preview and preview_type of a dataset."""
        return json.loads((self.build / "api" / "nodes" / node_id).read_text())


def catalog_config(project: Path, env: str = "local") -> dict[str, dict]:
    """The resolved catalog configuration of ``project`` (base + ``env``), patterns left out.

    Read with Kedro's own config loader, as ``kedro run`` would, but without importing the
    project's pipelines.
    """
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(conf_source=str(project / "conf"), base_env="base", default_run_env=env)
    config = loader["catalog"]
    return {
        name: entry
        for name, entry in config.items()
        if not name.startswith("_") and "{" not in name and isinstance(entry, dict)
    }


def dataset_class(entry: dict) -> type:
    """The class a catalog entry's ``type`` names (kedro-datasets short names resolved)."""
    from kedro.io.core import parse_dataset_definition

    dataset_type, _ = parse_dataset_definition(dict(entry))
    return dataset_type


def file_config(entry: dict) -> dict:
    """The entry that holds the files: the inner ``dataset`` of a PartitionedDataset."""
    if "Partitioned" in str(entry.get("type", "")):
        inner = entry.get("dataset", {})
        inner = {"type": inner} if isinstance(inner, str) else dict(inner)
        inner.setdefault("filepath", entry.get("path", "") + (entry.get("filename_suffix") or ""))
        return inner
    return entry


def preview_type_name(cls: type) -> str | None:
    """The name of the preview type ``cls.preview`` returns, as Kedro-Viz reads it; None if none."""
    import inspect

    preview = getattr(cls, "preview", None)
    if preview is None:
        return None
    annotation = inspect.signature(preview).return_annotation
    return getattr(annotation, "__name__", str(annotation))


def suffix_of(entry: dict) -> str:
    files = file_config(entry)
    path = str(files.get("filepath") or files.get("filename_suffix") or entry.get("filename_suffix") or "")
    return Path(path).suffix.lower()


def read_only_view(source: Path, root: Path) -> Path:
    """A project folder at ``root`` that shares ``source``'s code, conf and data (data linked).

    Tests that only read a shared run (Kedro-Viz previews, notebooks) work here, so whatever
    they write (a ``build`` folder, ``.viz``, copied notebooks) never lands in the shared project.
    """
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "conf", root / "conf", dirs_exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (source / name).exists():
            shutil.copy(source / name, root / name)
    if not (root / "data").exists():
        (root / "data").symlink_to((source / "data").resolve(), target_is_directory=True)
    if not (root / "src").exists():
        (root / "src").mkdir()
        (root / "src" / "dex_bias").symlink_to((source / "src" / "dex_bias").resolve(), target_is_directory=True)
    return root

"""The intended flow of the audit, for the lineage tests: the pipelines' order and the shared datasets.

The truth of *who makes what* and *which layer* is the code: the registered pipelines (makers)
and the catalog (layers); ``tests/viz/test_lineage.py`` derives both from them and checks
CONTRIBUTING.md's tables and Kedro-Viz's drawing against them. What only people decide is kept
here: the order datasets may flow in, and which datasets pass between pipelines (the edges of
the contract). The functions work on plain mappings (pipeline name -> dataset names), so they
can be fed from Kedro ``Pipeline`` objects (:func:`io_by_pipeline`) or from a Kedro-Viz build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dex_bias.pipeline_registry import FLOW

#: The pipelines of the base env in flow order (compare needs two audited models, so it is not
#: registered there): a dataset may only flow from an earlier pipeline to a later one.
FLOW_ORDER: tuple[str, ...] = tuple(name for name in FLOW if name != "compare")

#: The layers Kedro-Viz knows (its "Data Structure" convention), in flow order.
KEDRO_VIZ_LAYERS: tuple[str, ...] = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)

#: A node name a reader can take in at a glance: snake_case words.
NODE_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: What Kedro 1.x makes up for a node given no name: ``<function>__<8 hex digits>``.
GENERATED_NODE_NAME = re.compile(r"__[0-9a-f]{8}$")


def is_clear_node_name(full_name: str) -> bool:
    """True for a node name given by hand (``namespace.snake_case``), False for Kedro's made-up one."""
    own_name = full_name.rsplit(".", 1)[-1]
    return bool(NODE_NAME_PATTERN.match(own_name)) and not GENERATED_NODE_NAME.search(own_name)


@dataclass(frozen=True, order=True)
class Edge:
    """A dataset written by one pipeline and read by another."""

    dataset: str
    producer: str
    consumer: str

    def __str__(self) -> str:
        return f"{self.producer} --{self.dataset}--> {self.consumer}"


#: The datasets that pass between pipelines (the contract of CONTRIBUTING.md) and their readers.
SHARED_DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    # dataset: (made by, read by)
    "faces": ("ingest", ("align", "train", "infer", "explain")),  # explain: image paths
    "landmarks": ("align", ("train", "infer", "explain", "report")),  # report: image quality, optional
    "age_model": ("train", ("infer", "explain")),
    "predictions": ("infer", ("explain", "report", "correct")),
    "region_attributions": ("explain", ("report",)),
}

#: Every edge the contract promises.
INTENDED_EDGES: frozenset[Edge] = frozenset(
    Edge(dataset, producer, consumer)
    for dataset, (producer, consumers) in SHARED_DATASETS.items()
    for consumer in consumers
)


def intended_edges() -> list[Edge]:
    """The contract's edges between pipelines, sorted by dataset then consumer."""
    return sorted(INTENDED_EDGES)


def duplicate_writers(outputs_by_pipeline: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Datasets written by more than one pipeline, with the (sorted) pipelines that write them.

    Two writers of one catalog name would make the run order, and so the file's content,
    depend on scheduling; Kedro refuses it inside one pipeline, and this catches it between
    pipelines before they are summed into ``__default__``.
    """
    writers: dict[str, set[str]] = {}
    for pipeline, outputs in outputs_by_pipeline.items():
        for dataset in outputs:
            writers.setdefault(dataset, set()).add(pipeline)
    return {dataset: sorted(names) for dataset, names in sorted(writers.items()) if len(names) > 1}


def edges_between(
    outputs_by_pipeline: Mapping[str, Iterable[str]], inputs_by_pipeline: Mapping[str, Iterable[str]]
) -> set[Edge]:
    """Every (dataset, producer, consumer) where one pipeline reads what another writes.

    Parameters (``params:...``, ``parameters``) are not datasets and are left out.
    """
    writers: dict[str, set[str]] = {}
    for pipeline, outputs in outputs_by_pipeline.items():
        for dataset in outputs:
            writers.setdefault(dataset, set()).add(pipeline)
    edges = set()
    for consumer, inputs in inputs_by_pipeline.items():
        for dataset in inputs:
            if dataset.startswith("params:") or dataset == "parameters":
                continue
            for producer in writers.get(dataset, ()):
                if producer != consumer:
                    edges.add(Edge(dataset, producer, consumer))
    return edges


def backward_edges(edges: Iterable[Edge]) -> list[Edge]:
    """Edges that run against :data:`FLOW_ORDER` (or touch a pipeline not in it)."""
    rank = {name: position for position, name in enumerate(FLOW_ORDER)}
    return sorted(
        edge
        for edge in edges
        if edge.producer not in rank or edge.consumer not in rank or rank[edge.producer] >= rank[edge.consumer]
    )


def io_by_pipeline(pipelines: Mapping[str, object]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(all outputs, free inputs) of each registered Kedro pipeline, ``__default__`` left out."""
    outputs, inputs = {}, {}
    for name, pipeline in pipelines.items():
        if name == "__default__":
            continue
        outputs[name] = set(pipeline.all_outputs())  # type: ignore[attr-defined]
        inputs[name] = set(pipeline.inputs())  # type: ignore[attr-defined]
    return outputs, inputs


def maker_of(dataset: str, outputs_by_pipeline: Mapping[str, Iterable[str]]) -> str | None:
    """The pipeline that writes ``dataset`` (None when no pipeline does: an external input)."""
    for pipeline, outputs in outputs_by_pipeline.items():
        if dataset in set(outputs):
            return pipeline
    return None

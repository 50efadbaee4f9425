"""The intended lineage of the audit: which pipeline makes each shared dataset and who reads it.

CONTRIBUTING.md states the contract in prose; this module states the same graph as data, so that
``tests/viz/test_lineage.py`` can compare it with what Kedro-Viz actually draws. The functions
here work on plain mappings (pipeline name -> dataset names), so they can be fed from Kedro
``Pipeline`` objects (:func:`io_by_pipeline`) or from a Kedro-Viz build (the test does that).

When a pipeline changes what it shares, change this module and the table in CONTRIBUTING.md in
the same commit: the lineage test fails until both agree with the code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The pipelines in flow order: a dataset may only flow from an earlier one to a later one.
FLOW_ORDER: tuple[str, ...] = ("ingest", "align", "train", "infer", "explain", "report", "correct")

#: The layers Kedro-Viz knows (its "Data Structure" convention), in flow order.
KEDRO_VIZ_LAYERS: tuple[str, ...] = (
    "raw", "intermediate", "primary", "feature", "model_input", "models", "model_output", "reporting",
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

#: Every dataset of the contract: (made by, Kedro-Viz layer), as tabled in CONTRIBUTING.md.
CONTRACT: dict[str, tuple[str, str]] = {
    "faces": ("ingest", "intermediate"),
    "quarantine": ("ingest", "raw"),
    "landmarks": ("align", "primary"),
    "alignment_failures": ("align", "primary"),
    "age_model": ("train", "models"),
    "training_history": ("train", "model_output"),
    "predictions": ("infer", "model_output"),
    "inference_failures": ("infer", "model_output"),
    "region_attributions": ("explain", "model_output"),
    "explanation_quality": ("explain", "reporting"),
    "group_metrics": ("report", "reporting"),
    "significance_tests": ("report", "reporting"),
    "age_gate_metrics": ("report", "reporting"),
    "paper_normality_table": ("report", "reporting"),
    "paper_correlation_table": ("report", "reporting"),
    "region_weight_correlations": ("report", "reporting"),
    "age_verification_metrics": ("report", "reporting"),
    "group_spread": ("report", "reporting"),
    "image_quality_metrics": ("report", "reporting"),
    "audit_report": ("report", "reporting"),
    "correction_model": ("correct", "models"),
    "correction_metrics": ("correct", "reporting"),
    "corrected_predictions": ("correct", "model_output"),
}
CONTRACT_MAKERS: dict[str, str] = {dataset: maker for dataset, (maker, _) in CONTRACT.items()}
CONTRACT_LAYERS: dict[str, str] = {dataset: layer for dataset, (_, layer) in CONTRACT.items()}

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


def edges_between(outputs_by_pipeline: Mapping[str, Iterable[str]],
                  inputs_by_pipeline: Mapping[str, Iterable[str]]) -> set[Edge]:
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
        edge for edge in edges
        if edge.producer not in rank or edge.consumer not in rank
        or rank[edge.producer] >= rank[edge.consumer]
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

"""How a pipeline folder declares its nodes: a list of ``(function, inputs, outputs)`` steps.

Every ``pipelines/<name>/pipeline.py`` returns ``pipeline_of("<name>", [...])``. Each step becomes
a Kedro ``Node`` named after its function (``verb_object``: the name ``kedro run --nodes``,
Kedro-Viz and the lineage test read), and the whole list sits inside the namespace ``<name>``
(one collapsible box in Kedro-Viz) with every dataset keeping the name the catalog gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kedro.pipeline import Node, Pipeline

Datasets = str | list[str] | dict[str, str] | None
Step = tuple[Callable[..., Any], Datasets, Datasets]


def pipeline_of(namespace: str, steps: Sequence[Step]) -> Pipeline:
    """The pipeline of ``steps`` inside ``namespace``, each node named after its function."""
    nodes = [Node(function, inputs, outputs, name=function.__name__) for function, inputs, outputs in steps]
    return Pipeline(nodes, namespace=namespace, prefix_datasets_with_namespace=False)

"""Project pipelines: each folder under ``pipelines/``, plus one branch per declared model.

``models.audit`` (``conf/base/parameters_models.yml``) lists the models a run audits:
``trained`` (the model the train pipeline makes, under the plain dataset names) and declared
models (``dex_bias.models.registry``). For each declared model ``K`` the ``infer``, ``explain``
and ``report`` pipelines are instantiated again inside the namespace ``K`` (``K.age_model`` ->
``K.predictions`` -> ``K.region_attributions`` -> ``K.audit_report``), sharing ``faces`` and
``landmarks``, so Kedro-Viz shows one branch per model; ``compare`` puts them side by side.

Registered names: every folder with nodes (``infer``, ``explain`` and ``report`` include every
audited model's branch; ``compare`` needs two models), each declared model's key (its whole
branch), and ``__default__``, the full
audit in flow order: ingest, align, [train], infer, explain, report, [correct], [compare]
(train and correct when ``trained`` is audited; compare with two models or more).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from dex_bias.hooks import project_pipelines
from dex_bias.model_audit import audited
from dex_bias.models.registry import TRAINED

#: Pipelines instantiated once per audited model.
PER_MODEL = ("infer", "explain", "report")
#: Datasets every model's branch shares (made once, by ingest and align).
SHARED = {"faces", "landmarks"}
FLOW = ("ingest", "align", "train", "infer", "explain", "report", "correct", "compare")


def for_model(pipeline: Pipeline, model: str) -> Pipeline:
    """``pipeline`` for declared model ``model``: its datasets inside the namespace ``model``; the
    shared datasets and the parameters keep their names (every model is audited the same way)."""
    parameters = {name for name in pipeline.inputs() if name.startswith("params:")}
    return Pipeline(pipeline, namespace=model, inputs=pipeline.inputs() & SHARED, parameters=parameters)


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline folder, each declared model's branch, and ``__default__`` (see the module docstring)."""
    folders = project_pipelines()
    models = audited()
    declared = [model for model in models if model != TRAINED]
    # compare is empty with fewer than two models: not registered then (nothing to run or draw).
    pipelines = {name: pipeline for name, pipeline in folders.items() if pipeline.nodes}
    for name in PER_MODEL:
        own = folders[name] if TRAINED in models else Pipeline([])
        pipelines[name] = sum((for_model(folders[name], model) for model in declared), own)
    for model in declared:
        pipelines[model] = sum((for_model(folders[name], model) for name in PER_MODEL), Pipeline([]))
    in_flow = [name for name in FLOW if (name not in ("train", "correct") or TRAINED in models) and name in pipelines]
    extra = sorted(set(folders) - set(FLOW))
    pipelines["__default__"] = sum((pipelines[name] for name in in_flow + extra), Pipeline([]))
    return pipelines

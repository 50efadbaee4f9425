"""The lineage a reader sees in Kedro-Viz is the graph CONTRIBUTING.md promises.

The graph is read from a real ``kedro viz build`` of a fresh project copy (what a user opens),
the dataset rules from the catalog configuration as ``kedro run`` resolves it. Makers come from
the pipelines and layers from the catalog (the code is the truth); CONTRIBUTING.md's tables are
checked against them. The intended flow lives in :mod:`tests.viz.lineage`; the first tests show
that its checks catch what they claim to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.viz.kedro_viz_data import (
    OPTIONAL_PREVIEW_FOR_SUFFIX,
    PREVIEW_FOR_SUFFIX,
    VizGraph,
    build_viz,
    catalog_config,
    dataset_class,
    file_config,
    preview_type_name,
    read_only_view,
    suffix_of,
)
from tests.viz.lineage import (
    FLOW_ORDER,
    INTENDED_EDGES,
    KEDRO_VIZ_LAYERS,
    SHARED_DATASETS,
    Edge,
    backward_edges,
    duplicate_writers,
    edges_between,
    io_by_pipeline,
    is_clear_node_name,
)

# --- the checks themselves can fail ------------------------------------------------------------


def test_duplicate_writers_names_each_shared_output_and_its_writers():
    outputs = {"infer": {"predictions", "inference_failures"}, "correct": {"predictions"}, "report": {"group_metrics"}}
    assert duplicate_writers(outputs) == {"predictions": ["correct", "infer"]}
    assert duplicate_writers({"infer": {"predictions"}, "correct": {"corrected_predictions"}}) == {}


def test_edges_between_pipelines_skip_parameters_and_internal_datasets():
    outputs = {"ingest": {"faces", "quarantine"}, "align": {"landmarks", "contact_sheet"}}
    inputs = {"align": {"faces", "params:align"}, "ingest": {"params:ingest"}}
    assert edges_between(outputs, inputs) == {Edge("faces", "ingest", "align")}


def test_a_dataset_flowing_against_the_flow_order_is_reported():
    forward, against = Edge("predictions", "infer", "report"), Edge("correction_metrics", "correct", "report")
    assert backward_edges({forward, against}) == [against]
    assert backward_edges({Edge("faces", "ingest", "notebook_only")}) != []


def test_a_node_left_unnamed_is_told_from_a_named_one():
    assert is_clear_node_name("align.detect_faces")
    assert not is_clear_node_name("align.detect_faces__84973848")
    assert not is_clear_node_name("align.<lambda>__0a1b2c3d")


def test_the_intended_graph_follows_the_flow_order():
    assert backward_edges(INTENDED_EDGES) == []
    assert {edge.dataset for edge in INTENDED_EDGES} == set(SHARED_DATASETS)


# --- the real project, as Kedro-Viz draws it -----------------------------------------------------


@pytest.fixture(scope="module")
def lineage_project(project_factory) -> Path:
    return project_factory("lineage")


@pytest.fixture(scope="module")
def viz(lineage_project) -> VizGraph:
    return VizGraph(build_viz(lineage_project))


@pytest.fixture(scope="module")
def catalog(lineage_project) -> dict[str, dict]:
    return catalog_config(lineage_project)


def test_every_pipeline_is_registered_with_named_nodes(viz):
    assert viz.pipeline_names == {*FLOW_ORDER, "__default__"}, (
        "Kedro-Viz should list exactly the flow's pipelines and __default__; "
        "a new pipeline joins dex_bias.pipeline_registry.FLOW and CONTRIBUTING.md"
    )
    for pipeline in FLOW_ORDER:
        tasks = viz.tasks(pipeline)
        assert tasks, f"pipeline '{pipeline}' has no nodes in Kedro-Viz"
        unnamed = [task["full_name"] for task in tasks if not is_clear_node_name(task["full_name"])]
        assert not unnamed, (
            f"pipeline '{pipeline}': give these nodes a snake_case name= "
            f"(Kedro made one up from the function): {unnamed}"
        )
    default_tasks = {task["id"] for task in viz.tasks("__default__")}
    every_task = {task["id"] for pipeline in FLOW_ORDER for task in viz.tasks(pipeline)}
    assert default_tasks == every_task, "__default__ should be exactly the sum of the pipelines"


def test_each_pipeline_is_one_namespace_that_collapses_to_one_box(viz):
    modular = viz.main["modular_pipelines"]
    root_children = {(child["id"], child["type"]) for child in modular["__root__"]["children"]}
    for pipeline in FLOW_ORDER:
        assert pipeline in modular, (
            f"no Kedro-Viz box for '{pipeline}': create_pipeline() must set namespace='{pipeline}'"
        )
        assert (pipeline, "modularPipeline") in root_children, f"'{pipeline}' is not a top-level box"
        outside = [
            task["full_name"]
            for task in viz.tasks(pipeline)
            if task["modular_pipelines"] != [pipeline] or not task["full_name"].startswith(pipeline + ".")
        ]
        assert not outside, (
            f"nodes of '{pipeline}' outside its namespace (they would stay drawn when it collapses): {outside}"
        )
    loose = sorted(viz.nodes_by_id[node_id]["name"] for node_id, kind in root_children if kind == "task")
    assert not loose, f"nodes outside any pipeline's namespace: {loose}"


def test_no_dataset_is_written_by_two_pipelines():
    # Read from the pipelines themselves, not the build: a second writer makes the sum that is
    # `__default__` (and so `kedro viz build`) fail without naming the pipelines.
    from kedro.framework.project import configure_project, find_pipelines

    configure_project("dex_bias")
    outputs, _ = io_by_pipeline(find_pipelines(raise_errors=True))
    assert duplicate_writers(outputs) == {}, "each catalog name has exactly one maker; rename one of the outputs"


def test_shared_datasets_flow_along_the_intended_edges(viz):
    drawn = edges_between(viz.outputs_by_pipeline, viz.inputs_by_pipeline)
    missing = sorted(INTENDED_EDGES - drawn)
    assert not missing, "edges promised in CONTRIBUTING.md but not drawn: " + ", ".join(map(str, missing))
    against = backward_edges(drawn)
    assert not against, (
        "datasets flowing against ingest -> align -> train/infer -> explain -> report -> correct: "
        + ", ".join(map(str, against))
    )
    for dataset, (maker, _readers) in SHARED_DATASETS.items():
        assert dataset in viz.outputs_by_pipeline.get(maker, set()), f"'{dataset}' should be made by '{maker}'"
        # Drawn outside the maker's box (a namespace output), so it stays visible when collapsed.
        node_id = viz.datasets[dataset]["id"]
        assert node_id in viz.main["modular_pipelines"][maker]["outputs"], (
            f"'{dataset}' is hidden inside '{maker}': keep prefix_datasets_with_namespace=False"
        )


def _contributing_table() -> dict[str, tuple[str, list[str]]]:
    """dataset -> (maker, layers) from the table under "Which pipeline makes each dataset" in CONTRIBUTING.md."""
    import re

    text = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("### Which pipeline makes each dataset", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[1] in FLOW_ORDER:
            layers = [layer.strip().replace(" ", "_") for layer in re.split(r"[/,]", cells[2])]
            for dataset in re.findall(r"`([a-z0-9_]+)`", cells[0]):
                rows[dataset] = (cells[1], layers)
    return rows


def _makers_in_contributing() -> dict[str, str]:
    return {dataset: maker for dataset, (maker, _) in _contributing_table().items()}


def test_contributing_md_names_the_maker_of_every_persisted_dataset(viz, catalog):
    documented = _makers_in_contributing()
    assert documented, "CONTRIBUTING.md lost its 'Which pipeline makes each dataset' table"
    wrong = {}
    for pipeline, outputs in viz.outputs_by_pipeline.items():
        for dataset in outputs:
            persisted = dataset in catalog and dataset_class(catalog[dataset]).__name__ != "MemoryDataset"
            if persisted and documented.get(dataset) != pipeline:
                wrong[dataset] = f"made by {pipeline}, CONTRIBUTING.md says {documented.get(dataset, 'nothing')}"
    assert not wrong, f"update the table in CONTRIBUTING.md: {wrong}"


def test_every_persisted_dataset_is_versioned(viz, catalog):
    made_here = set().union(*viz.outputs_by_pipeline.values())
    unversioned = []
    for name, entry in catalog.items():
        cls = dataset_class(entry)
        if cls.__name__ == "MemoryDataset" or name not in made_here:
            continue  # in memory, or an input the user supplies (not ours to version)
        versioned = file_config(entry).get("versioned") if "Partitioned" in cls.__name__ else entry.get("versioned")
        if versioned is not True:
            unversioned.append(name)
    assert not unversioned, (
        f"set `versioned: true` (for a PartitionedDataset: on its inner dataset) "
        f"in conf/base/catalog_<pipeline>.yml for: {sorted(unversioned)}"
    )


OTHER_CONF_ENVS = sorted(
    path.name for path in (REPO_ROOT / "conf").iterdir() if path.is_dir() and path.name not in ("base", "local")
)


@pytest.mark.parametrize("env", ["local", *OTHER_CONF_ENVS])
def test_every_dataset_carries_a_kedro_viz_layer(viz, lineage_project, env):
    catalog = catalog_config(lineage_project, env)
    if env != "local":  # judge only what this environment changes; base faults show under 'local'
        default = catalog_config(lineage_project)
        catalog = {name: entry for name, entry in catalog.items() if default.get(name) != entry}
    wrong = {}
    for name, entry in catalog.items():
        layer = ((entry.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
        if layer not in KEDRO_VIZ_LAYERS:
            wrong[name] = layer
    assert not wrong, (
        f"conf env '{env}': metadata: {{kedro-viz: {{layer: ...}}}} missing or not one of "
        f"{KEDRO_VIZ_LAYERS} (a MemoryDataset declared in the catalog too): {wrong}"
    )
    if env == "local":
        assert set(viz.main["layers"]) <= set(KEDRO_VIZ_LAYERS)
        # CONTRIBUTING.md's layer column says what the catalog says (a row of several datasets lists
        # the layers of its datasets), and Kedro-Viz draws each dataset in its catalog layer.
        for dataset, (_, layers) in _contributing_table().items():
            if dataset in catalog and dataset in viz.datasets:
                layer = ((catalog[dataset].get("metadata") or {}).get("kedro-viz") or {}).get("layer")
                assert layer in layers, f"CONTRIBUTING.md puts '{dataset}' in {layers}, the catalog in '{layer}'"
                assert viz.datasets[dataset]["layer"] == layer, f"Kedro-Viz draws '{dataset}' outside '{layer}'"


def _previews_missing(catalog: dict[str, dict], kinds: dict[str, str]) -> dict[str, str]:
    missing = {}
    for name, entry in catalog.items():
        wanted = kinds.get(suffix_of(entry))
        if wanted is None:
            continue
        viz_metadata = (entry.get("metadata") or {}).get("kedro-viz") or {}
        if viz_metadata.get("preview") is False:
            missing[name] = "preview switched off in metadata"
            continue
        offered = preview_type_name(dataset_class(entry))
        if offered != wanted:
            missing[name] = f"{entry.get('type')} offers {offered or 'no preview'}, wanted {wanted}"
    return missing


def test_tables_json_and_images_offer_a_preview(catalog):
    missing = _previews_missing(catalog, PREVIEW_FOR_SUFFIX)
    assert not missing, (
        "Kedro-Viz cannot preview these (use a dataset with preview(), or "
        "implement preview() returning kedro_datasets._typing types): "
        + "; ".join(f"{name}: {why}" for name, why in sorted(missing.items()))
    )


def test_report_optional_previews(catalog):
    """Not a failure: prints HTML/SVG outputs without a preview, for the lead's list."""
    missing = _previews_missing(catalog, OPTIONAL_PREVIEW_FOR_SUFFIX)
    for name, why in sorted(missing.items()):
        print(f"no preview (optional): {name}: {why}")


@pytest.mark.slow
def test_previews_render_with_the_demo_runs_data(demo_run, tmp_path):
    """On a finished run, every dataset that offers a preview shows one in Kedro-Viz's side panel.

    (Tables, JSON and images that offer none fail ``test_tables_json_and_images_offer_a_preview``.)
    """
    view = read_only_view(demo_run, tmp_path / "demo_view")
    graph = VizGraph(build_viz(view, include_previews=True))
    catalog = catalog_config(view)
    blank, checked = [], []
    for name, entry in catalog.items():
        if name not in graph.datasets or preview_type_name(dataset_class(entry)) is None:
            continue
        metadata = graph.node_metadata(graph.datasets[name]["id"])
        if not metadata.get("preview"):
            blank.append(name)
        checked.append(name)
    assert checked, "no dataset with a preview was found in the demo run's catalog"
    assert not blank, f"Kedro-Viz shows no preview for these after a full run: {sorted(blank)}"

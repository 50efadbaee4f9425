"""Parameters: the YAML is the only source of values.

Kedro builds each node's settings from its type hint; a misspelt, missing or mistyped key in any
parameters file (base, an env, ``--params``) stops the run before any node, naming the key, where it
belongs and the file; an env or ``--params`` that sets one nested key keeps every other key of the
base; a value shared by several pipelines is written once (conf/base/globals.yml).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from dex_bias.parameters import ParameterError, ProjectParameters, project_parameters
from tests.conftest import REPO_ROOT, base_parameters, run_kedro


def conf_with(tmp_path: Path, files: dict[str, dict]) -> Path:
    """A copy of the project's conf/ with ``files`` (``"local/parameters.yml": {...}``) written in it."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf)
    for relative, content in files.items():
        (conf / relative).parent.mkdir(parents=True, exist_ok=True)
        (conf / relative).write_text(yaml.safe_dump(content))
    return conf


def nest(dotted: str, value) -> dict:
    *parents, leaf = dotted.split(".")
    tree = {leaf: value}
    for part in reversed(parents):
        tree = {part: tree}
    return tree


def refusal(conf: Path, env: str | None = "local", overrides: dict | None = None) -> str:
    with pytest.raises(ParameterError) as raised:
        project_parameters(conf, env=env, overrides=overrides)
    return str(raised.value)


# --- Kedro builds what the nodes take ------------------------------------------------------------


def _schema_type(path: list[str]):
    """The annotation ``ProjectParameters`` gives the block at ``path``."""
    annotation = ProjectParameters
    for part in path:
        annotation = annotation.__pydantic_fields__[part].annotation
    return annotation


def test_every_typed_node_input_is_the_settings_class_the_schema_reads_its_block_as(audited_models_config):
    """Kedro's own type extraction (what it builds and validates) agrees with the check's schema, and no
    parameter is typed both whole and in part (Kedro would then fail to set the part)."""
    from kedro.validation.type_extractor import TypeExtractor

    from dex_bias.pipeline_registry import register_pipelines

    audited_models_config(audit=["trained", "dlib_age_v1"])  # compare is registered with two models
    pipelines = register_pipelines()
    typed = TypeExtractor(pipelines).extract_types_from_pipelines()
    assert {
        "ingest.demo",
        "align.detection",
        "dask",
        "train",
        "infer",
        "explain",
        "report",
        "correct",
        "compare",
        "models",
    } <= set(typed)
    for key, annotation in typed.items():
        assert _schema_type(key.split(".")) == annotation, key
        assert not [other for other in typed if other.startswith(key + ".")], f"{key} is typed whole and in part"
    # Every parameter a node reads is a key of the schema (typed or a plain value such as align.chunk_size).
    for name in {name for pipeline in pipelines.values() for name in pipeline.inputs() if name.startswith("params:")}:
        _schema_type(name.removeprefix("params:").split("."))


def test_a_session_gives_each_node_its_settings_built_from_the_yaml(project_factory, monkeypatch):
    """What ``kedro run`` feeds the nodes: Kedro's own validation builds the typed settings, with an env
    that sets one nested key keeping the base values of the rest (the soft merge)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from dex_bias.explain.tasks import ExplainSettings
    from dex_bias.faces.detect import CropSettings
    from dex_bias.fanout import FanOut

    project = project_factory("typed_session", {"explain.lime.num_samples": 50})
    monkeypatch.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        parameters = session.load_context()._get_parameters()
    base = base_parameters()
    explain = parameters["params:explain"]
    assert isinstance(explain, ExplainSettings)
    assert explain == replace(base.explain, lime=replace(base.explain.lime, num_samples=50))
    assert (
        isinstance(parameters["params:align.crop"], CropSettings) and parameters["params:align.crop"] == base.align.crop
    )
    assert isinstance(parameters["params:dask"], FanOut) and parameters["params:dask"] == base.dask
    assert parameters["params:explain.lime"].hide == "mean"


# --- a misspelt key stops the run, naming the key, where it belongs and the file ----------------


@pytest.mark.parametrize(
    "file, dotted, value, named, fix",
    [
        (
            "local/parameters_explain.yml",
            "explain.lime.num_sample",
            50,
            "`explain.lime.num_sample`",
            "Did you mean `explain.lime.num_samples`?",
        ),
        ("local/parameters.yml", "explain.max_image", 5, "`explain.max_image`", "Did you mean `explain.max_images`?"),
        ("local/parameters.yml", "ingest.demo.cout", 40, "`ingest.demo.cout`", "Did you mean `ingest.demo.count`?"),
        (
            "local/parameters_report.yml",
            "report.bootstrap.nboot",
            200,
            "`report.bootstrap.nboot`",
            "Did you mean `report.bootstrap.n_boot`?",
        ),
        (
            "local/parameters.yml",
            "correct.bands",
            [[0, 17], [18, 116]],
            "`correct.bands`",
            "Did you mean `correct.age_bands`?",
        ),
        (
            "local/parameters.yml",
            "train.model.backbon",
            "wrn_16_8",
            "`train.model.backbon`",
            "Did you mean `train.model.backbone`?",
        ),
        (
            "local/parameters.yml",
            "align.progress",
            False,
            "`align.progress`",
            "The key `progress` belongs at `dask.progress` (conf/base/parameters_dask.yml)",
        ),
        (
            "local/parameters.yml",
            "infer.log_every",
            5,
            "`infer.log_every`",
            "The key `log_every` belongs at `dask.log_every` (conf/base/parameters_dask.yml)",
        ),
        ("local/parameters.yml", "explian.seed", 1, "`explian`", "Did you mean `explain`?"),
    ],
)
def test_a_misspelt_key_in_an_env_file_is_named_with_its_file_and_the_fix(tmp_path, file, dotted, value, named, fix):
    conf = conf_with(tmp_path, {file: nest(dotted, value)})
    message = refusal(conf)
    assert f"{named} (conf/{file})" in message and fix in message
    assert message.startswith("The parameters have 1 problem, so no node was run:")


def test_a_misspelt_key_in_a_list_item_names_the_item_and_its_keys(tmp_path):
    conf = conf_with(
        tmp_path,
        {
            "local/parameters.yml": {
                "align": {"detection": {"fallbacks": [{"name": "padded", "upsampel": 1, "pad": 0.25}]}}
            }
        },
    )
    message = refusal(conf)
    assert "`align.detection.fallbacks[0].upsampel` (conf/local/parameters.yml)" in message
    assert "the keys there are name, pad, upsample" in message and "Did you mean" in message
    assert "`align.detection.fallbacks[0].upsample` is missing" in message  # the item lacks the real key


def test_a_misspelt_key_in_conf_base_names_the_base_file_and_the_key_it_then_lacks(tmp_path):
    conf = conf_with(tmp_path, {})
    path = conf / "base" / "parameters_infer.yml"
    path.write_text(path.read_text().replace("  batch_size: 64", "  batch_sise: 64"))
    message = refusal(conf)
    assert "`infer.batch_sise` (conf/base/parameters_infer.yml)" in message
    assert "Did you mean `infer.batch_size`?" in message
    assert (
        "`infer.batch_size` is missing: no parameters file sets it. Add it under `infer` "
        "(conf/base/parameters_infer.yml)" in message
    )


def test_a_misspelt_key_in_another_env_names_that_env_s_file(tmp_path):
    conf = conf_with(tmp_path, {"published/parameters_more.yml": {"explain": {"quality": {"stabilty_seeds": 2}}}})
    message = refusal(conf, env="published")
    assert "`explain.quality.stabilty_seeds` (conf/published/parameters_more.yml)" in message
    assert "Did you mean `explain.quality.stability_seeds`?" in message


def test_a_misspelt_key_in_params_is_named_as_such(tmp_path):
    message = refusal(REPO_ROOT / "conf", env="base", overrides={"explain.lime.num_sample": 5})
    assert "`explain.lime.num_sample` (--params)" in message


def test_several_problems_come_in_one_message_each_with_its_file(tmp_path):
    conf = conf_with(tmp_path, {"local/parameters.yml": {"report": {"alpha": "oops"}, "dask": {"worker": 2}}})
    message = refusal(conf, overrides={"ingest.demo.count": "many"})
    assert message.startswith("The parameters have 3 problems, so no node was run:")
    assert "`ingest.demo.count` = 'many' (--params): Input should be a valid integer" in message
    assert "`report.alpha` = 'oops' (conf/local/parameters.yml): Input should be a valid number" in message
    assert "`dask.worker` (conf/local/parameters.yml)" in message and "Did you mean `dask.workers`?" in message


def test_a_bad_value_read_through_a_global_names_the_globals_file(tmp_path):
    conf = conf_with(tmp_path, {"local/globals.yml": {"challenge_ages": ["eighteen"]}})
    message = refusal(conf)
    assert (
        "`report.challenge_ages[0]` = 'eighteen' (conf/base/parameters_report.yml, through "
        "${globals:challenge_ages} in conf/local/globals.yml and conf/base/globals.yml)" in message
    )


def test_a_value_a_settings_class_refuses_is_named_with_its_reason_before_any_node(tmp_path):
    conf = conf_with(
        tmp_path,
        {
            "local/parameters.yml": {
                "align": {"crop": {"alignment": "eyes", "edge": "clamp"}},
                "infer": {"splits": "everything"},
            }
        },
    )
    message = refusal(conf)
    assert "`align.crop` (conf/local/parameters.yml): align.crop.edge: clamp intersects" in message
    assert "`infer.splits` = 'everything' (conf/local/parameters.yml): Input should be 'auto' or 'all'" in message


def test_kedro_run_with_a_misspelt_key_stops_before_any_node_naming_key_and_file(project_factory):
    project = project_factory("misspelt_run")
    (project / "conf" / "local" / "parameters_ingest.yml").write_text("ingest:\n  demo:\n    cont: 12\n")
    done = run_kedro(project, "--pipelines=ingest", "--params", "explain.lime.num_sample=5", check=False)
    output = " ".join((done.stdout + done.stderr).split())  # rich wraps long lines
    assert done.returncode != 0
    assert "ParameterError: The parameters have 2 problems, so no node was run:" in output
    assert "`ingest.demo.cont` (conf/local/parameters_ingest.yml)" in output
    assert "`explain.lime.num_sample` (--params)" in output and "Did you mean `explain.lime.num_samples`?" in output
    assert [p for p in (project / "data").rglob("*") if p.is_file()] == []  # no node ran: nothing written


# --- an env or --params that sets one key keeps the rest ---------------------------------------

ONE_KEY = {
    "ingest": ("ingest.demo.count", 40),
    "align": ("align.crop.margin", 0.3),
    "dask": ("dask.retries", 3),
    "train": ("train.model.backbone", "wrn_16_8"),
    "infer": ("infer.batch_size", 16),
    "explain": ("explain.lime.num_samples", 50),
    "report": ("report.bootstrap.n_boot", 200),
    "correct": ("correct.guard.z", 3.0),
    "compare": ("compare.leaderboard.challenge_age", 21),
    "models": ("models.threads", 2),
    "runs": ("runs.accept_mismatched_inputs", True),
}


def _with(tree: dict, path: list[str], value) -> dict:
    """``tree`` (nested dicts) with the value at ``path`` replaced."""
    head, *rest = path
    return {**tree, head: _with(tree[head], rest, value) if rest else value}


def test_the_one_key_cases_cover_every_block():
    assert set(ONE_KEY) == set(ProjectParameters.__pydantic_fields__)


@pytest.mark.parametrize("block", sorted(ONE_KEY))
def test_an_env_that_sets_one_nested_key_keeps_every_other_key_of_the_base(tmp_path, block):
    dotted, value = ONE_KEY[block]
    conf = conf_with(tmp_path, {"single/parameters.yml": nest(dotted, value)})
    changed = asdict(getattr(project_parameters(conf, env="single"), block))
    base = asdict(getattr(base_parameters(), block))
    assert changed != base and changed == _with(base, dotted.split(".")[1:], value)
    # --params does the same.
    from_params = asdict(getattr(base_parameters({dotted: value}), block))
    assert from_params == changed


def test_an_env_that_sets_a_few_explain_keys_keeps_the_rest_of_explain():
    """(Once the job of explain's DEFAULT_PARAMS; now the soft merge's.)"""
    partial = base_parameters({"explain.max_images": 5, "explain.lime.num_samples": 50}).explain
    base = base_parameters().explain
    assert partial.max_images == 5 and partial.lime.num_samples == 50
    assert partial.lime.hide == "mean" and partial.quality == base.quality
    assert partial == replace(base, max_images=5, lime=replace(base.lime, num_samples=50))


def test_the_published_env_changes_only_the_keys_it_writes():
    published = project_parameters(REPO_ROOT / "conf", env="published")
    base = base_parameters()
    assert published.models.audit == ["yu4u_wrn_16_8_v05", "dlib_age_v1"]
    assert published.explain == replace(
        base.explain,
        max_images=28,
        lime=replace(base.explain.lime, num_samples=500),
        quickshift=replace(base.explain.quickshift, enabled=False),
        quality=replace(base.explain.quality, sample_size=4, stability_seeds=2),
    )
    assert (published.report, published.align, published.ingest) == (base.report, base.align, base.ingest)


# --- a shared value lives once -----------------------------------------------------------------


def test_the_age_bands_are_written_once_and_read_by_every_pipeline_under_one_name(tmp_path):
    base = base_parameters()
    bands = yaml.safe_load((REPO_ROOT / "conf" / "base" / "globals.yml").read_text())["age_bands"]
    readers = (base.ingest.age_bands, base.explain.age_bands, base.report.age_bands, base.correct.age_bands)
    assert all(tuple(map(tuple, bands)) == read for read in readers)
    for path in (REPO_ROOT / "conf" / "base").glob("parameters_*.yml"):
        assert "[60, 116]" not in path.read_text(), f"{path.name} writes the age bands again"
    # One globals.yml line changes them for every pipeline.
    conf = conf_with(tmp_path, {"local/globals.yml": {"age_bands": [[0, 17], [18, 116]]}})
    changed = project_parameters(conf)
    assert {
        changed.ingest.age_bands,
        changed.explain.age_bands,
        changed.report.age_bands,
        changed.correct.age_bands,
    } == {((0, 17), (18, 116))}


def test_params_that_set_a_key_read_through_a_global_change_that_key_only():
    """Kedro 1.7's globals resolver shared one node among its readers, so ``--params`` set them all
    (dex_bias.config.ConfigLoader gives each its copy), as an env file already did not."""
    parameters = base_parameters({"report.challenge_ages": [30], "correct.age_bands": [[0, 99]]})
    assert parameters.report.challenge_ages == [30]
    assert parameters.correct.evaluation.challenge_ages == [18, 21, 25]
    assert parameters.correct.age_bands == ((0, 99),)
    assert parameters.report.age_bands == parameters.ingest.age_bands == base_parameters().report.age_bands


# --- no value is written twice in the code -----------------------------------------------------


def test_no_code_reads_a_parameter_with_a_default_of_its_own():
    """issue 13's check, ``grep -rn "DEFAULT_PARAMS\\|complete_params\\|params.get(" src/`` (``.``: any character)."""
    found = []
    for path in sorted((REPO_ROOT / "src").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"DEFAULT_PARAMS|complete_params|params.get\(", line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_a_misspelt_field_of_a_model_declaration_is_named_with_its_file(tmp_path):
    conf = conf_with(
        tmp_path,
        {
            "local/parameters_models.yml": {
                "models": {"declarations": {"vendor": {"formt": "onnx", "file": "vendor.onnx"}}}
            }
        },
    )
    message = refusal(conf)
    assert (
        "`models.declarations.vendor` (conf/local/parameters_models.yml): model declaration 'vendor': "
        "unknown key(s) ['formt']" in message
    )
    assert (
        "`models.audit` (--params): model declaration 'nobody': listed in `models.audit` but not declared"
        in refusal(REPO_ROOT / "conf", env="base", overrides={"models.audit": ["trained", "nobody"]})
    )

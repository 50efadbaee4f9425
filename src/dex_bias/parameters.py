"""The project's parameters: which settings class reads each block, and the check that stops a run
on a misspelt key, naming the key, where it belongs and the file it came from.

Every top-level key of ``conf/<env>/parameters*.yml`` is read as one settings class
(:mod:`dex_bias.schema`), listed in :class:`ProjectParameters`. Kedro builds the object a node
takes from the node's type hint (``params:explain`` -> :class:`~dex_bias.explain.tasks.ExplainSettings`,
``params:align.crop`` -> :class:`~dex_bias.faces.detect.CropSettings``); before that,
:class:`~dex_bias.hooks.ParameterCheckHooks` reads all of them as the context is created
(:func:`check_parameters`), so a key no settings class has, a missing key or a bad value anywhere
(any env, ``--params`` included) stops the run before any node with one message. Only this check
knows files: Kedro's own validation sees the merged parameters, not where a key was written.

:func:`project_parameters` gives tests and scripts the same typed values ``kedro run`` would use.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from kedro.validation import ParameterValidationError
from omegaconf import OmegaConf
from pydantic import ValidationError

from dex_bias.correction.settings import CorrectionSettings
from dex_bias.explain.tasks import ExplainSettings
from dex_bias.fanout.engine import FanOut
from dex_bias.models.registry import ModelsSettings, audited_models
from dex_bias.pipelines.align.nodes import AlignParameters
from dex_bias.pipelines.compare.nodes import CompareSettings
from dex_bias.pipelines.infer.nodes import InferParameters
from dex_bias.pipelines.ingest.nodes import IngestParameters
from dex_bias.pipelines.train.nodes import TrainParameters
from dex_bias.report.settings import ReportSettings
from dex_bias.runs.hooks import RunsSettings
from dex_bias.schema import settings_dataclass

#: Where the pipelines' own parameters are described, key by key.
DOCUMENTED_IN = "conf/base/parameters_<pipeline>.yml"
#: Error types pydantic gives a key that its class does not have.
UNKNOWN_KEY = ("unexpected_keyword_argument", "extra_forbidden")
RUNTIME = "--params"


@settings_dataclass
class ProjectParameters:
    """Every block of the parameters, each as the settings class its readers take."""

    ingest: IngestParameters
    align: AlignParameters
    dask: FanOut
    train: TrainParameters
    infer: InferParameters
    explain: ExplainSettings
    report: ReportSettings
    correct: CorrectionSettings
    compare: CompareSettings
    models: ModelsSettings
    runs: RunsSettings


class ParameterError(ParameterValidationError):
    """The parameters cannot be read; the message names each bad key, its file and the fix."""


# --- where each key was written ------------------------------------------------------------------


def _load(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def _files(config_loader, key: str) -> list[tuple[str, Any]]:
    """``(label, content)`` of each file ``config_loader`` reads for ``key``, the run env's before
    base's (the order in which they win), e.g. ``("conf/local/parameters.yml", {...})``."""
    conf = Path(config_loader.conf_source)
    run_env = config_loader.env or config_loader.default_run_env
    envs = [run_env, config_loader.base_env] if run_env != config_loader.base_env else [run_env]
    found = []
    for env in envs:
        folder = conf / env
        paths = set()
        for pattern in config_loader.config_patterns[key]:
            # As Kedro's globs: "parameters*/**" is every file in such a folder.
            matches = (
                [inner for outer in folder.glob(pattern[:-3]) for inner in outer.rglob("*")]
                if pattern.endswith("/**")
                else folder.glob(pattern)
            )
            paths.update(
                path
                for path in matches
                if path.is_file()
                and path.suffix in (".yml", ".yaml", ".json")
                and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            )
        found += [(f"{conf.name}/{env}/{path.relative_to(folder).as_posix()}", _load(path)) for path in sorted(paths)]
    return found


def _at(tree: Any, path: Sequence[str | int]) -> Any:
    """The value at ``path`` in nested dicts and lists, or ``_ABSENT``."""
    for part in path:
        if isinstance(tree, Mapping) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and 0 <= part < len(tree):
            tree = tree[part]
        else:
            return _ABSENT
    return tree


_ABSENT = object()


class ParameterSources:
    """The ``--params`` of a run and its parameter files, in the order in which they win."""

    def __init__(self, config_loader):
        runtime = dict(config_loader.runtime_params or {})
        self.sources = ([(RUNTIME, runtime)] if runtime else []) + _files(config_loader, "parameters")
        self.globals = _files(config_loader, "globals")

    def setting(self, path: Sequence[str | int]) -> list[str]:
        """Every source that writes ``path``."""
        return [label for label, tree in self.sources if _at(tree, path) is not _ABSENT]

    def home(self, path: Sequence[str | int]) -> str:
        """The file that describes the block ``path`` starts in (the base file, which sources list last)."""
        setting = self.setting(path[:1])
        return setting[-1] if setting else DOCUMENTED_IN

    def describe(self, path: Sequence[str | int]) -> str:
        """Where the value at ``path`` comes from: the winning source, through a global if it reads one."""
        for cut in range(len(path), 0, -1):  # a value inside a list or a global: the key that holds it
            for label, tree in self.sources:
                value = _at(tree, path[:cut])
                if value is _ABSENT:
                    continue
                if isinstance(value, str) and value.startswith("${globals:"):
                    name = value[len("${globals:") :].rstrip("}").split(",")[0].strip()
                    files = [g for g, tree in self.globals if _at(tree, name.split(".")) is not _ABSENT]
                    return f"{label}, through ${{globals:{name}}} in {' and '.join(files) or 'no globals file'}"
                return label
        return "no parameters file"


# --- what the settings classes expect ------------------------------------------------------------


def _classes(annotation: Any) -> list[Any]:
    """The settings classes an annotation holds (unwrapping ``X | None``, lists, tuples and dicts' values)."""
    if is_dataclass(annotation):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType, list, tuple, dict):
        return [c for arg in get_args(annotation) if arg is not Ellipsis for c in _classes(arg)]
    return []


def _fields(cls: Any) -> dict[str, Any]:
    return {name: info.annotation for name, info in cls.__pydantic_fields__.items()}


def _class_at(path: Sequence[str | int]) -> Any | None:
    """The settings class that reads the block at ``path`` (list indices and dict keys skipped), or None."""
    cls = ProjectParameters
    for part in path:
        if isinstance(part, int):
            continue
        candidates = _classes(_fields(cls).get(part)) if cls is not None and part in _fields(cls) else []
        if not candidates:
            return None
        cls = candidates[0]
    return cls


def _all_keys(cls: Any = ProjectParameters, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path the settings classes know, e.g. ``("explain", "lime", "num_samples")``."""
    for name, annotation in _fields(cls).items():
        yield (*prefix, name)
        for inner in _classes(annotation):
            yield from _all_keys(inner, (*prefix, name))


def _dotted(path: Sequence[str | int]) -> str:
    return "".join(
        f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part)) for i, part in enumerate(path)
    )


def _unknown_key(path: tuple, sources: ParameterSources) -> str:
    parent, key = path[:-1], path[-1]
    cls = _class_at(parent)
    known = sorted(_fields(cls)) if cls is not None else []
    where = f"under `{_dotted(parent)}`" if parent else "at the top level"
    text = (
        f"`{_dotted(path)}` ({', '.join(sources.setting(path)) or sources.describe(path)}): no such key {where}; "
        f"the keys there are {', '.join(known)}."
    )
    # The same key elsewhere, in this block first (``report.seed``: ``report.bootstrap.seed``).
    elsewhere = sorted(
        (found for found in _all_keys() if found[-1] == key and found != path),
        key=lambda found: (found[:1] != path[:1], len(found)),
    )
    close = difflib.get_close_matches(str(key), known, n=1)
    if elsewhere:
        homes = " or ".join(f"`{_dotted(found)}` ({sources.home(found)})" for found in elsewhere[:3])
        text += f" The key `{key}` belongs at {homes}: move it there."
    elif close:
        text += f" Did you mean `{_dotted((*parent, close[0]))}`?"
    else:
        text += " Remove it, or spell it as one of those."
    return text


def _problem(error: Mapping[str, Any], sources: ParameterSources) -> str:
    path = tuple(error["loc"])
    if error["type"] in UNKNOWN_KEY:
        return _unknown_key(path, sources)
    if error["type"] == "missing":
        parent = path[:-1]
        if not parent:
            return f"the `{path[0]}` block is missing: no parameters file has it ({DOCUMENTED_IN})."
        return (
            f"`{_dotted(path)}` is missing: no parameters file sets it. Add it under `{_dotted(parent)}` "
            f"({sources.describe(parent)})."
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, Mapping) or type(value).__name__ == "ArgsKwargs" else f" = {value!r}"
    return f"`{_dotted(path)}`{shown} ({sources.describe(path)}): {message}."


def _is_union_member(part: Any) -> bool:
    """Whether a ``loc`` part is pydantic's name of the member of a union it tried (``int``, ``tuple[...]``)."""
    return isinstance(part, str) and (part in ("int", "float", "str", "bool", "none") or "[" in part)


def _merged(errors: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors with a value that fits no member of a union told once, every member's reason joined."""
    merged: dict[tuple, dict[str, Any]] = {}
    for item in errors:
        loc = tuple(part for part in item["loc"] if not _is_union_member(part))
        if loc in merged and merged[loc]["type"] not in UNKNOWN_KEY and item["type"] not in UNKNOWN_KEY:
            if item["msg"] not in merged[loc]["msg"]:
                merged[loc]["msg"] += f"; or {item['msg']}"
            continue
        merged.setdefault(loc, {**item, "loc": loc})
    return list(merged.values())


def describe_errors(error: ValidationError, sources: ParameterSources) -> str:
    """One message for every problem pydantic found, each with its key, its file and the fix."""
    problems = [_problem(item, sources) for item in _merged(error.errors())]
    head = f"The parameters have {len(problems)} problem{'s' if len(problems) > 1 else ''}, so no node was run:"
    return "\n".join(
        [
            head,
            *(f"  - {problem}" for problem in problems),
            f"Every key and what it means: {DOCUMENTED_IN}; an env (conf/<env>/) or --params sets keys "
            "that exist there.",
        ]
    )


# --- the check, and the parameters as a run reads them ------------------------------------------


def check_parameters(config_loader) -> ProjectParameters:
    """Every parameter block of the run's config (env and ``--params`` applied) as its settings class.

    Raises :class:`ParameterError` naming each unknown key (with the file that wrote it and where
    it belongs), each missing key and each bad value.
    """
    raw = config_loader["parameters"]
    try:
        parameters = ProjectParameters(**raw)
    except ValidationError as error:
        raise ParameterError(describe_errors(error, ParameterSources(config_loader))) from None
    try:  # the declarations of models.declarations are checked by the registry, field by field
        audited_models(parameters.models)
    except ValueError as error:  # a DeclarationError names its model
        sources = ParameterSources(config_loader)
        declared = getattr(error, "model", None) in parameters.models.declarations
        path = ("models", "declarations", error.model) if declared else ("models", "audit")
        raise ParameterError(
            f"The parameters have 1 problem, so no node was run:\n  - `{_dotted(path)}` "
            f"({sources.describe(path)}): {error}"
        ) from None
    return parameters


def project_parameters(
    conf_source: str | Path = "conf", env: str | None = None, overrides: Mapping[str, Any] | None = None
) -> ProjectParameters:
    """The parameters ``kedro run --env <env> --params <overrides>`` would use, checked and typed.

    ``overrides``: dotted keys, e.g. ``{"explain.lime.num_samples": 120}``.
    """
    from dex_bias.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

    runtime: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = runtime
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    loader = CONFIG_LOADER_CLASS(str(conf_source), env=env, runtime_params=runtime, **CONFIG_LOADER_ARGS)
    return check_parameters(loader)

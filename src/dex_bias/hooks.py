"""Run-level checks that no single pipeline can make for itself."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset
from kedro.pipeline import Pipeline

logger = logging.getLogger(__name__)


class MissingUpstreamError(RuntimeError):
    """A pipeline was run alone before the pipeline that makes one of its inputs."""


def producers_of(dataset: str, pipelines: dict[str, Pipeline]) -> list[str]:
    """Names of the registered pipelines (not ``__default__``) that write ``dataset``."""
    return sorted(name for name, pipe in pipelines.items() if name != "__default__" and dataset in pipe.all_outputs())


def project_pipelines() -> dict[str, Pipeline]:
    """Every pipeline folder's ``create_pipeline()``, by folder name.

    ``find_pipelines`` returns only the pipelines a ``--pipelines`` run asked for (and refuses a
    name that is not a folder, such as a declared model's branch), so the registry and the maker
    of a missing input look them up here instead.
    """
    import dex_bias.pipelines as package

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found[info.name] = module.create_pipeline()
    return found


def manual_placement_hint(dataset: Any) -> str:
    """How to supply a dataset's file by hand so that Kedro reads it (an empty string if unknown).

    A versioned dataset is read only from ``<filepath>/<version>/<file name>`` (the newest
    version folder), never from ``<filepath>`` itself, so the hint names a version folder, and
    says so when a file already sits where a folder of versions belongs.
    """
    from kedro.io.core import generate_timestamp

    from dex_bias.runs.kedro_io import hint_path

    found = hint_path(dataset, generate_timestamp())
    if found is None:
        return ""
    target, versioned = found
    if not versioned:
        return f", or put the file at {target} if it comes from elsewhere"
    folder = PurePosixPath(target).parent.parent
    if Path(folder).is_file():
        return (
            f"; a file sits at {folder}, but a versioned dataset is read only from a version folder "
            f"inside it: move it with `mv {folder} {folder}.tmp && mkdir -p {PurePosixPath(target).parent} "
            f"&& mv {folder}.tmp {target}`"
        )
    hint = (
        f", or if it comes from elsewhere put it in a version folder named by a time stamp: "
        f"`mkdir -p {PurePosixPath(target).parent} && cp <your file> {target}`"
    )
    set_aside = Path(folder) / ".incomplete"
    if set_aside.is_dir() and any(set_aside.iterdir()):
        hint += f" (versions written by runs that did not finish are set aside in {set_aside}, and are not read)"
    return hint


class UpstreamCheckHooks:
    """Stop a run before any node runs when a persisted input has never been made.

    ``kedro run --pipeline=explain`` reads the latest persisted versions of ``predictions``,
    ``landmarks`` and ``age_model``; when one was never written, Kedro would otherwise fail at
    the first node that loads it, possibly after other nodes ran for minutes.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        missing = []
        for name in sorted(pipeline.inputs()):
            if name.startswith("params:") or name == "parameters":
                continue
            dataset = catalog.get(name)
            if dataset is None or isinstance(dataset, MemoryDataset):
                continue  # Kedro itself reports unregistered inputs; memory ones are made in-run
            if not catalog.exists(name):
                missing.append((name, dataset))
        if missing:
            from dex_bias.pipeline_registry import register_pipelines

            every_pipeline = register_pipelines()
            lines = []
            for name, dataset in missing:
                makers = producers_of(name, every_pipeline)
                how = (
                    f"run `kedro run --pipelines={makers[0]}` (or the full `kedro run`) first"
                    if makers
                    else "no pipeline makes it"
                )
                how += manual_placement_hint(dataset)
                lines.append(f"  - '{name}' has never been made: {how}")
            raise MissingUpstreamError(
                "This run needs datasets that do not exist yet; no node was run.\n" + "\n".join(lines)
            )


class ParameterCheckHooks:
    """Stop a run, as its context is created, when a parameter is misspelt, missing or of the wrong type.

    Every block of the parameters (base, the run's env, ``--params``) is read as its settings
    class (:mod:`dex_bias.parameters`); one message names each bad key, where it belongs and the
    file it came from. This runs before any other hook reads a parameter, and before any node.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        from dex_bias.parameters import check_parameters

        check_parameters(context.config_loader)

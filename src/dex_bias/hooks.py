"""Run-level checks that no single pipeline can make for itself."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset
from kedro.pipeline import Pipeline

logger = logging.getLogger(__name__)


class MissingUpstreamError(RuntimeError):
    """A pipeline was run alone before the pipeline that makes one of its inputs."""


def producers_of(dataset: str, pipelines: dict[str, Pipeline]) -> list[str]:
    """Names of the registered pipelines (not ``__default__``) that write ``dataset``."""
    return sorted(
        name for name, pipe in pipelines.items()
        if name != "__default__" and dataset in pipe.all_outputs()
    )


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
                where = getattr(dataset, "_filepath", None)
                makers = producers_of(name, every_pipeline)
                how = (
                    f"run `kedro run --pipelines={makers[0]}` (or the full `kedro run`) first"
                    if makers else "no pipeline makes it"
                )
                if where is not None:
                    how += f", or put the file at {where} if it comes from elsewhere"
                lines.append(f"  - '{name}' has never been made: {how}")
            raise MissingUpstreamError(
                "This run needs datasets that do not exist yet; no node was run.\n" + "\n".join(lines)
            )

"""The project's Kedro context: every catalog it makes reads only the versions of finished runs.

Kedro-Viz builds its catalog with no hooks (unless ``--include-hooks``), so what must happen
before anything reads "latest" happens here, where ``kedro run``, a notebook's
``%load_ext kedro.ipython`` and Kedro-Viz all make their catalog:

1. runs whose process is gone without finishing (killed: no hook ran) have what they wrote set
   aside, with a warning naming them;
2. a catalog for reading (a notebook's, Kedro-Viz's: no save version) reads, for each dataset a
   run still in progress is writing, the newest version that run did not write.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.context import KedroContext
from kedro.io import DataCatalog

from dex_bias.runs.hooks import active_run_ids, describe_set_aside, forget_runs
from dex_bias.runs.kedro_io import stored_dataset
from dex_bias.runs.ledger import RunLedger

logger = logging.getLogger("dex_bias.runs")


def set_aside_unfinished_runs(project_path: Any) -> list[str]:
    """Set aside what runs whose process is gone wrote; returns their run ids.

    A run of this very process that has not finished while a new catalog is being made was
    abandoned (a notebook's run stopped with Ctrl-C): Kedro makes a run's catalog before its hooks
    start it, so no run of this process can be in progress here.
    """
    ledger = RunLedger(project_path)
    try:
        outcomes = ledger.sweep(active_here=frozenset())
    except OSError as error:  # a read-only copy of the data, say: read on, but say what may be unfinished
        logger.warning(
            "Could not set aside what unfinished runs wrote under %s (%s): the latest version of a "
            "dataset may come from a run that did not finish (see %s).",
            project_path,
            error,
            ledger.root,
        )
        return []
    for outcome in outcomes:
        logger.warning(describe_set_aside(outcome, outcome.reason))
    forget_runs({outcome.run_id for outcome in outcomes})
    return [outcome.run_id for outcome in outcomes]


def read_past_running_runs(
    catalog: Any, project_path: Any, load_versions: dict[str, str] | None = None
) -> dict[str, str]:
    """Pin each dataset a run in progress is writing to its newest version from a finished run.

    Returns ``{dataset: version read}``. Datasets the user pinned (``load_versions``) are left as asked.
    """
    ledger = RunLedger(project_path)
    running = ledger.running_outputs(active_here=active_run_ids())
    busy = {output["version_folder"] for output in running}
    pinned = {}
    for output in running:
        name = output["name"]
        if name in (load_versions or {}) or name in pinned or name not in catalog:
            continue
        dataset = stored_dataset(catalog, name)
        if dataset is None or not dataset.versioned or ledger.relative(dataset.filepath) != output["filepath"]:
            continue
        finished = [v for v in dataset.versions() if ledger.relative(dataset.filepath / v) not in busy]
        if finished:
            dataset.pin(finished[0])
            pinned[name] = finished[0]
            logger.info(
                "%s: run %s is still writing a newer version; this session reads %s",
                name,
                output["run_id"],
                finished[0],
            )
    return pinned


class RunAwareContext(KedroContext):
    """``KedroContext`` whose catalogs never read what an unfinished run wrote (see the module)."""

    def _get_catalog(
        self,
        catalog_class: type = DataCatalog,
        save_version: str | None = None,
        load_versions: dict[str, str] | None = None,
    ) -> Any:
        set_aside_unfinished_runs(self.project_path)
        catalog = super()._get_catalog(
            catalog_class=catalog_class, save_version=save_version, load_versions=load_versions
        )
        if save_version is None:  # a catalog for reading; a run's own inputs are chosen by its hooks
            read_past_running_runs(catalog, self.project_path, load_versions)
        return catalog

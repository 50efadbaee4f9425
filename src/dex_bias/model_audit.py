"""Kedro glue for auditing several models in one run: which models, and their dataset names.

``models.audit`` (``conf/base/parameters_models.yml``; the ``published`` env lists the
registry's models) decides which per-model pipelines exist, so the pipeline registry must know
it before any pipeline is built. :class:`AuditedModelsHook` hands the run's ``models``
parameters (``--env`` and ``--params`` included) to :func:`configure` as the context is created,
which Kedro does before it first reads the pipelines; a process that never made a Kedro context
(a script calling ``register_pipelines()``) falls back to the project's ``conf/`` with the
environment in ``KEDRO_ENV``.

Dataset names: the model trained here keeps the plain names (``predictions``,
``audit_report``); a declared model ``K`` gets them inside its namespace (``K.predictions``,
``K.audit_report``), each matched by a dataset factory of ``conf/base/catalog_models.yml``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from dex_bias.models.registry import TRAINED, ModelsSettings, audited_models, declared_models

logger = logging.getLogger(__name__)

_ACTIVE: ModelsSettings | None = None


def configure(models: ModelsSettings) -> None:
    """Set the ``models`` parameters of this run (checked: undeclared models refused)."""
    global _ACTIVE
    audited_models(models)
    _ACTIVE = models


def _from_project_conf() -> ModelsSettings:
    from kedro.framework.project import settings

    conf = Path.cwd() / settings.CONF_SOURCE
    if not conf.is_dir():
        raise FileNotFoundError(
            f"no {settings.CONF_SOURCE}/ folder in {Path.cwd()}: the audited models "
            "(`models.audit`) are read from the project's parameters; run from the project folder"
        )
    loader = settings.CONFIG_LOADER_CLASS(str(conf), env=os.environ.get("KEDRO_ENV"), **settings.CONFIG_LOADER_ARGS)
    return ModelsSettings(**loader["parameters"]["models"])


def active_parameters() -> ModelsSettings:
    """The ``models`` parameters of this run (see the module docstring)."""
    if _ACTIVE is None:
        configure(_from_project_conf())
    return _ACTIVE


def audited() -> list[str]:
    """The audited model keys of this run, ``trained`` standing for the model trained here."""
    return audited_models(active_parameters())


def declared_audited() -> list[str]:
    """The audited models that are declared (every audited key but ``trained``)."""
    return [key for key in audited() if key != TRAINED]


def dataset_name(model: str, name: str) -> str:
    """The catalog name of a per-model dataset: plain for the model trained here, else ``<model>.<name>``."""
    return name if model == TRAINED else f"{model}.{name}"


def declaration(model: str):
    """The :class:`~dex_bias.models.spec.ModelSpec` of a declared model of this run."""
    return declared_models(active_parameters())[model]


class AuditedModelsHook:
    """Read ``models`` from the run's configuration before the pipelines are built, and check every
    declared model's file (existence, checksum, signature) before any node reads an image."""

    @hook_impl
    def after_context_created(self, context) -> None:
        configure(ModelsSettings(**context.config_loader["parameters"]["models"]))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        from dex_bias.datasets.declared_model import DeclaredModelDataset

        for name in sorted(pipeline.inputs()):
            if name.endswith(".age_model"):
                dataset = catalog.get(name)
                if isinstance(dataset, DeclaredModelDataset):
                    dataset.check()

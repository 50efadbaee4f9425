"""Which models an audit runs: the registry of published models, and the user's own declarations.

- :func:`published_models`: the declarations shipped in ``published.yml`` beside this module
  (``yu4u_wrn_16_8_v05``, ``dlib_age_v1``), each with its file's SHA-256 and provenance.
- :class:`ModelsSettings`: the ``models`` parameters (conf/base/parameters_models.yml).
- :func:`declared_models`: those plus the user's declarations from the ``models`` parameters
  (``models.declarations``: key -> declaration, the YAML form of
  :meth:`~dex_bias.models.spec.ModelSpec.from_dict`), and ``models.files`` (key -> path), which
  points a registry model at another copy of its file (its checksum is still checked).
- :func:`audited_models`: the keys of ``models.audit``, checked. ``trained`` stands for the
  model the train pipeline makes (the ``age_model`` dataset); every other key is declared.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from dex_bias.models.spec import DeclarationError, ModelSpec
from dex_bias.schema import settings_dataclass

#: The audit key of the model trained by this project's train pipeline.
TRAINED = "trained"


@settings_dataclass
class ModelsSettings:
    """``params:models``: the models a run audits (``audit``: ``trained`` or declared keys), the
    user's ``declarations`` (key -> declaration, each checked by :meth:`ModelSpec.from_dict`),
    other copies of registry models' ``files`` (key -> path), onnxruntime ``threads`` (``None``:
    onnxruntime's choice)."""

    audit: list[str]
    declarations: dict[str, dict[str, Any]]
    files: dict[str, str]
    threads: int | None


@lru_cache(maxsize=1)
def _published_yaml() -> dict[str, Any]:
    text = resources.files("dex_bias.models").joinpath("published.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def published_models() -> dict[str, ModelSpec]:
    """The registry: every published model dex_bias knows, by key."""
    return {name: ModelSpec.from_dict(name, declaration) for name, declaration in _published_yaml().items()}


def declared_models(params: ModelsSettings) -> dict[str, ModelSpec]:
    """Registry models and the user's declarations (``models.declarations``), by key.

    A user declaration may not reuse a registry key (declare a changed model under a new name,
    so that an audit never mixes two files under one name); ``models.files`` moves a registry
    model's file.
    """
    models = published_models()
    for name, declaration in params.declarations.items():
        if name in models:
            raise DeclarationError(
                name,
                "this key is a published model of the registry (dex_bias/models/published.yml)",
                "give your declaration another name, or move the registry model's file with `models.files`",
            )
        if name == TRAINED:
            raise DeclarationError(name, f"{TRAINED!r} is the model the train pipeline makes", "pick another name")
        models[name] = ModelSpec.from_dict(name, declaration)
    for name, path in params.files.items():
        if name not in models:
            raise DeclarationError(
                name, "`models.files` names a model that is not declared", f"declared models: {sorted(models)}"
            )
        models[name] = dataclasses.replace(models[name], file=str(path))
    return models


def audited_models(params: ModelsSettings) -> list[str]:
    """The keys of ``models.audit``, in order, each ``trained`` or a declared model (checked)."""
    audit = list(params.audit)
    if not audit:
        raise ValueError(
            f"`models.audit` is empty: list the models to audit ({TRAINED!r}: the model the train "
            "pipeline makes; or declared models)"
        )
    known = declared_models(params)
    unknown = [key for key in audit if key != TRAINED and key not in known]
    if unknown:
        raise DeclarationError(
            ", ".join(unknown),
            "listed in `models.audit` but not declared",
            f"declare it under `models.declarations`, or pick one of {[TRAINED, *sorted(known)]}",
        )
    if len(set(audit)) != len(audit):
        raise ValueError(f"`models.audit` lists a model twice: {audit}")
    for key in audit:
        if not key.isidentifier():
            raise ValueError(
                f"`models.audit`: {key!r} is not a valid name (letters, digits and _; it prefixes "
                "dataset names such as <model>.predictions)"
            )
    return audit

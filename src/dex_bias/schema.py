"""How a settings class is declared: the typed form of a block of parameters.

A settings class is a frozen dataclass, made by pydantic, whose fields are the keys of one block
of ``conf/base/parameters_<pipeline>.yml``. It has no defaults: the YAML is the only source of
values, so a value is never written twice (once in the YAML, once in code) and never silently
taken from code when a key is missing. Made from a dict, it checks each value's type and refuses
a key it does not know, by name (``Unexpected keyword argument``), nested blocks included.

Kedro builds a node's settings from its type hint (``def node(settings: LimeSettings)`` fed
``params:explain.lime``); tests and scripts take the project's values from
:func:`dex_bias.parameters.project_parameters` and change what they need with
``dataclasses.replace``. Nothing here knows about Kedro.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

#: Unknown keys are an error; values are checked (and coerced where lossless: 1 -> 1.0).
STRICT = ConfigDict(extra="forbid")

T = TypeVar("T", bound=type)


def settings_dataclass(cls: T) -> T:
    """Class decorator: ``cls`` as a frozen, validating dataclass that refuses unknown keys."""
    return dataclass(frozen=True, config=STRICT)(cls)  # type: ignore[return-value]

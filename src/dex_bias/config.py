"""The project's config loader: Kedro's ``OmegaConfigLoader``, with ``${globals:...}`` copied per key."""

from __future__ import annotations

from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import Container, OmegaConf


class ConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` whose ``${globals:<key>}`` gives each parameter its own copy of a list or dict.

    Kedro 1.7's resolver hands every parameter that reads a global the same node of globals.yml,
    and ``--params`` are merged into the parameters before they are resolved: ``--params
    report.challenge_ages=[30]`` was merged into that shared node, so it also changed
    ``correct.evaluation.challenge_ages`` and every other reader of ``challenge_ages``. With a copy
    per parameter, ``--params`` changes the key it names, as an env file does; a global itself
    changes only in a globals.yml (conf/<env>/globals.yml for one env).
    """

    def _get_globals_value(self, *args: Any) -> Any:
        value = super()._get_globals_value(*args)
        return OmegaConf.to_container(value) if isinstance(value, Container) else value

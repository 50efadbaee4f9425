"""Project settings: config loading and the hooks every run goes through."""

from kedro.config import OmegaConfigLoader

from dex_bias.hooks import UpstreamCheckHooks

HOOKS = (UpstreamCheckHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}

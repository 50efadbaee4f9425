"""Project settings: config loading and the hooks every run goes through."""

from dex_bias.config import ConfigLoader
from dex_bias.hooks import ParameterCheckHooks, UpstreamCheckHooks
from dex_bias.model_audit import AuditedModelsHook
from dex_bias.runs.context import RunAwareContext
from dex_bias.runs.hooks import ConsistentInputsHooks, RunManifestHooks

# Hooks run in reverse order of this tuple (pluggy: last registered, first called): declared
# model files are checked, with the command that fetches a missing one, before the generic
# upstream check.
HOOKS = (UpstreamCheckHooks(), AuditedModelsHook())
# Runs you can trust (dex_bias.runs): inputs that belong together, a manifest per run, and outputs
# that count only once their run has finished (tryfirst / trylast: their place here does not matter).
HOOKS += (ConsistentInputsHooks(), RunManifestHooks())
# Every parameter read as its settings class (dex_bias.parameters) as the context is created
# (tryfirst): a misspelt key stops the run naming the key and its file.
HOOKS += (ParameterCheckHooks(),)
# Sets aside what killed runs wrote before any catalog reads "latest" (Kedro-Viz runs no hooks).
CONTEXT_CLASS = RunAwareContext

# OmegaConfigLoader, whose ${globals:...} lists stay the key's own when --params sets that key.
CONFIG_LOADER_CLASS = ConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # A run's --params or an env may set one key of a pipeline's dict (ingest.demo.count)
    # without wiping the rest of that dict.
    "merge_strategy": {"parameters": "soft"},
}

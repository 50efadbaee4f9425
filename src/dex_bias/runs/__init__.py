"""Runs you can trust: a manifest per run, consistent inputs, and outputs that count only once
their run has finished.

- :mod:`dex_bias.runs.ledger` (plain): the run records under ``data/09_runs/`` and setting aside
  what an unfinished run wrote.
- :mod:`dex_bias.runs.consistency` (plain): which versions of a run's inputs belong together.
- :mod:`dex_bias.runs.hooks` (Kedro): ``ConsistentInputsHooks`` and ``RunManifestHooks``.
- :mod:`dex_bias.runs.context` (Kedro): ``RunAwareContext``, which sets aside killed runs before
  any catalog (a run's, a notebook's, Kedro-Viz's) reads "latest".
"""

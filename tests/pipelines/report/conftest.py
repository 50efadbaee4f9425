"""Helpers for the report pipeline tests: synthetic external CSVs and reading versioned outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

#: Fewer bootstrap draws in subprocess runs: the intervals' code path is the same, just coarser.
FAST = ("--params", "report.bootstrap.n_boot=200")

def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned output (``data/.../name.ext/<stamp>/name.ext``)."""
    folder = project / relative
    stamps = sorted(p for p in folder.iterdir() if p.is_dir())
    assert stamps, f"no version of {relative} in {project}"
    return stamps[-1] / folder.name


def read_latest_csv(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_csv(latest(project, relative), keep_default_na=True)


def ingest_demo_params(project: Path) -> dict:
    """The demo settings the project's runs used (conf/base, then conf/local overrides)."""
    params = yaml.safe_load((project / "conf" / "base" / "parameters_ingest.yml").read_text())["ingest"]["demo"]
    for local in sorted((project / "conf" / "local").glob("parameters*.yml")):
        override = (yaml.safe_load(local.read_text()) or {}).get("ingest", {}).get("demo", {})
        params.update(override)
    return params

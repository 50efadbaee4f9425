"""Helpers for the report pipeline tests: synthetic external CSVs and reading versioned outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

#: Fewer bootstrap draws in subprocess runs: the intervals' code path is the same, just coarser.
FAST = ("--params", "report.bootstrap.n_boot=200")

OPTIONAL_ATTRIBUTIONS = {
    "region_attributions": {
        "type": "dex_bias.report.datasets.OptionalDataset",
        "columns": ["image_id", "method", "region", "weight"],
        "versioned": True,
        "dataset": {"type": "pandas.ParquetDataset", "filepath": "data/07_model_output/region_attributions.parquet"},
    }
}


def latest(project: Path, relative: str) -> Path:
    """The newest version of a versioned output (``data/.../name.ext/<stamp>/name.ext``)."""
    folder = project / relative
    stamps = sorted(p for p in folder.iterdir() if p.is_dir())
    assert stamps, f"no version of {relative} in {project}"
    return stamps[-1] / folder.name


def read_latest_csv(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_csv(latest(project, relative), keep_default_na=True)


def make_attributions_optional(project: Path) -> None:
    """Let a run without the explain pipeline still run the report (see the README)."""
    with open(project / "conf" / "local" / "catalog_optional_attributions.yml", "w") as fh:
        yaml.safe_dump(OPTIONAL_ATTRIBUTIONS, fh)


def ingest_demo_params(project: Path) -> dict:
    """The demo settings the project's runs used (conf/base, then conf/local overrides)."""
    params = yaml.safe_load((project / "conf" / "base" / "parameters_ingest.yml").read_text())["ingest"]["demo"]
    for local in sorted((project / "conf" / "local").glob("parameters*.yml")):
        override = (yaml.safe_load(local.read_text()) or {}).get("ingest", {}).get("demo", {})
        params.update(override)
    return params

"""Helpers for the report pipeline tests: reading versioned outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.conftest import latest

#: Fewer bootstrap draws in subprocess runs: the intervals' code path is the same, just coarser.
FAST = ("--params", "report.bootstrap.n_boot=200")


def read_latest_csv(project: Path, relative: str) -> pd.DataFrame:
    return pd.read_csv(latest(project, relative), keep_default_na=True)

"""Small task functions for the fan-out tests, importable by Dask workers (``tests.fanout.workload``)."""

from __future__ import annotations

import os
import time

import pandas as pd


def squares(ids: list[str], values: list[float], *, fail_on: str | None = None, seconds: float = 0.0) -> dict:
    """``{"squares": image_id, value, square, pid}``; raises on ``fail_on``; sleeps ``seconds`` first."""
    time.sleep(seconds)
    if fail_on in ids:
        raise ValueError(f"cannot square {fail_on}")
    return {
        "squares": pd.DataFrame({"image_id": ids, "value": values, "square": [v * v for v in values]}),
        "workers": pd.DataFrame({"pid": [os.getpid()]}),
    }

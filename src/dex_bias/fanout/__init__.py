"""Heavy per-image work fanned out on ``dask.distributed``: one mechanism for align, infer and explain.

A *stage* (aligning faces, predicting ages, explaining them) is a list of :class:`Task` s, each a
chunk of images and a plain function of this package's domain code. :func:`run_tasks` runs them

- on a ``distributed.LocalCluster`` on this machine (the default: one worker process per CPU core),
- on an existing Dask cluster (:attr:`FanOut.address`, the scheduler of ``dask scheduler`` with
  ``dask worker`` processes on other machines), or
- in this process, one after another (:attr:`FanOut.synchronous`; for debugging),

and gives the results back in task order, so every engine gives the same tables.

Heavy state (dlib's models, an age model) is loaded once per worker, not per task: a
:class:`Preload` is a worker plugin that opens it when a worker joins and keeps it in
:mod:`dex_bias.fanout.state`; tasks carry only a key to it.

Resumable stages write each chunk's result to a :class:`ChunkStore` as it finishes, under a
fingerprint of what the chunk computes (its input rows, the model's checksum, the settings), so a
run stopped midway and started again computes only the chunks that are missing, and never reuses a
chunk that other inputs, parameters or another model wrote. Progress over the whole fan-out
(images done, rate, time left) goes to the console and the log.

Nothing here knows Kedro: nodes build tasks from their parameters and call :func:`run_tasks`.
"""

from dex_bias.fanout.engine import FanOut, FanOutError, Preload, Task, close_clusters, run_tasks
from dex_bias.fanout.store import ChunkStore, StageStore, fingerprint, rows_fingerprint

__all__ = [
    "ChunkStore",
    "FanOut",
    "FanOutError",
    "Preload",
    "StageStore",
    "Task",
    "close_clusters",
    "fingerprint",
    "rows_fingerprint",
    "run_tasks",
]

"""The Dask worker plugin that loads a :class:`~dex_bias.fanout.engine.Preload` once per worker.

Dask runs ``setup`` on every worker when the plugin is registered and on every worker that joins
later (a replacement for one that died), so tasks always find their state; registering the same
plugin again (the next stage of the same run) is a no-op (``idempotent``).
"""

from __future__ import annotations

import asyncio

from distributed.diagnostics.plugin import WorkerPlugin

from dex_bias.fanout import state


class PreloadPlugin(WorkerPlugin):
    idempotent = True

    def __init__(self, preload):
        self.preload = preload
        self.name = preload.plugin_name

    async def setup(self, worker) -> None:
        threads = int(getattr(worker, "nthreads", None) or getattr(worker.state, "nthreads", 1) or 1)
        state.limit_threads(threads)
        # Loading a model takes seconds: off the worker's event loop, so it keeps answering the scheduler.
        await asyncio.get_running_loop().run_in_executor(None, self.preload.load_here, threads)

    def teardown(self, worker) -> None:
        state.drop(self.preload.key)

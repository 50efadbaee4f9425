"""Where a stage's tasks run, and how their results come back (see :mod:`dex_bias.fanout`).

One Dask client serves a whole process (a ``kedro run`` aligns, infers and explains on the same
cluster): :func:`_client` starts a ``LocalCluster`` the first time it is asked for one (or
connects to :attr:`FanOut.address`) and keeps it until the process ends or :func:`close_clusters`.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from dex_bias.fanout import state
from dex_bias.fanout.progress import Progress
from dex_bias.fanout.store import StageStore
from dex_bias.schema import settings_dataclass

logger = logging.getLogger("dex_bias.fanout")

#: The parameters block every fanned-out pipeline reads (conf/base/parameters_dask.yml).
PARAMETER = "dask"


class FanOutError(RuntimeError):
    """A stage could not run, or stopped: the message says which images are not done and what to do."""


@settings_dataclass
class FanOut:
    """Where the per-image work runs: the ``dask`` parameters (conf/base/parameters_dask.yml).

    ``address``: an existing Dask scheduler (``tcp://host:8786``); ``None`` starts a
    ``distributed.LocalCluster`` here with ``workers`` processes (``None``: one per CPU core) of
    ``threads_per_worker`` threads each, each allowed ``memory_limit`` (Dask's ``"auto"``: this
    machine's memory shared out). ``synchronous``: no Dask at all, every task in this process in
    order (for debugging; the same results). ``retries``: times a task that raised is tried again
    (a worker that dies is replaced and its tasks rerun by Dask itself). ``connect_timeout``:
    seconds to wait for the scheduler at ``address`` (and for its first worker).
    ``dashboard_address``: where a LocalCluster serves Dask's dashboard (``None``: none).
    ``log_every``: seconds between progress lines in the log; ``progress``: a bar on the console.
    """

    address: str | None
    workers: int | None
    threads_per_worker: int
    memory_limit: str | int | float | None
    synchronous: bool
    retries: int
    connect_timeout: float
    dashboard_address: str | None
    log_every: float
    progress: bool

    def __post_init__(self):
        if self.workers is not None and int(self.workers) < 1:
            raise ValueError(f"{PARAMETER}.workers must be at least 1 (or null: one per CPU core), not {self.workers}")
        if int(self.threads_per_worker) < 1:
            raise ValueError(f"{PARAMETER}.threads_per_worker must be at least 1, not {self.threads_per_worker}")
        if int(self.retries) < 0:
            raise ValueError(f"{PARAMETER}.retries must be 0 or more, not {self.retries}")
        if float(self.connect_timeout) <= 0:
            raise ValueError(
                f"{PARAMETER}.connect_timeout must be a positive number of seconds, not {self.connect_timeout}"
            )
        if self.address is not None and not str(self.address).strip():
            raise ValueError(f"{PARAMETER}.address is empty: give a scheduler (tcp://host:8786) or null")

    @property
    def worker_count(self) -> int:
        """LocalCluster workers: ``workers``, else one per CPU core."""
        return int(self.workers or os.cpu_count() or 1)

    def describe(self) -> str:
        if self.synchronous:
            return "this process (synchronous)"
        if self.address:
            return f"the Dask scheduler at {self.address}"
        return f"a local Dask cluster ({self.worker_count} worker processes x {self.threads_per_worker} thread)"


@dataclass
class Task:
    """One chunk of a stage: ``function(*args, **kwargs)`` over ``items`` (image ids), under ``key``.

    ``key`` names the chunk in a :class:`~dex_bias.fanout.store.StageStore` (a fingerprint of its
    inputs); ``function`` must be importable on a worker (a module-level function of ``dex_bias``).
    """

    key: str
    items: tuple[str, ...]
    function: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Preload:
    """State a stage's tasks need, loaded once per worker: ``loader(threads)`` is kept under ``key``.

    ``what`` names it in messages. ``local``: the object itself, used as is by a synchronous run
    in this process (it is not sent to workers: a worker calls ``loader``).
    """

    key: str
    loader: Callable[[int | None], Any]
    what: str
    local: Any = None

    def __getstate__(self):
        return {**self.__dict__, "local": None}

    @property
    def plugin_name(self) -> str:
        return f"dex_bias-preload-{self.key}"

    def load_here(self, threads: int | None = None) -> Any:
        if self.local is not None:
            state.put(self.key, self.local)
            return self.local
        return state.load(self.key, partial(self.loader, threads))


@dataclass
class TaskOutput:
    """What a task sends back: its result, the seconds it computed, and where."""

    result: Any
    seconds: float
    worker: str


def _call(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> TaskOutput:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return TaskOutput(result, time.perf_counter() - started, f"{os.uname().nodename}:{os.getpid()}")


def spread(paths: Sequence[str], count: int = 8) -> list[str]:
    """Up to ``count`` of ``paths``, the first and then evenly spread (files to check workers can read)."""
    paths = list(paths)
    if len(paths) <= count:
        return paths
    step = (len(paths) - 1) / (count - 1)
    return [paths[round(k * step)] for k in range(count)]


def _first_unreadable(paths: Sequence[str]) -> tuple[str, str] | None:
    """On a worker: the first of ``paths`` it cannot open, with the reason; ``None`` when it reads them all."""
    for path in paths:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as error:
            return path, f"{type(error).__name__}: {error.strerror or error}"
    return None


# --- clusters ------------------------------------------------------------------------------------

_ACTIVE: dict[str, Any] = {"key": None, "cluster": None, "client": None}


def close_clusters() -> None:
    """Close this process's Dask client and the LocalCluster it started (at exit, or between runs)."""
    client, cluster = _ACTIVE["client"], _ACTIVE["cluster"]
    _ACTIVE.update(key=None, cluster=None, client=None)
    for thing in (client, cluster):
        if thing is not None:
            try:
                thing.close()
            except Exception:  # pragma: no cover - closing at exit must not raise
                logger.debug("closing %s failed", thing, exc_info=True)


atexit.register(close_clusters)


def _worker_environment(fan_out: FanOut) -> dict[str, str]:
    threads = str(fan_out.threads_per_worker)
    return {
        "OMP_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        "KEDRO_DISABLE_TELEMETRY": os.environ.get("KEDRO_DISABLE_TELEMETRY", "1"),
    }


def _client(fan_out: FanOut):
    """This process's client for ``fan_out`` (connecting or starting a cluster the first time)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise FanOutError(
            "dask.distributed is not installed in this environment: `pip install -e .` installs it "
            f"(pinned beside dask), or set {PARAMETER}.synchronous: true to run in this process"
        ) from None
    key = (
        ("address", fan_out.address)
        if fan_out.address
        else (
            "local",
            fan_out.worker_count,
            fan_out.threads_per_worker,
            str(fan_out.memory_limit),
            fan_out.dashboard_address,
        )
    )
    if _ACTIVE["key"] == key and _ACTIVE["client"] is not None and _ACTIVE["client"].status == "running":
        return _ACTIVE["client"]
    close_clusters()
    if fan_out.address:
        started = time.perf_counter()
        try:
            client = Client(fan_out.address, timeout=f"{float(fan_out.connect_timeout)}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise FanOutError(
                f"No Dask scheduler answered at {fan_out.address} (parameter {PARAMETER}.address) within "
                f"{time.perf_counter() - started:.0f} s: {error}. Start one there (`dask scheduler`, then "
                f"`dask worker {fan_out.address}` on each machine), correct the address, or set "
                f"{PARAMETER}.address: null to run on a local cluster."
            ) from None
        try:
            client.wait_for_workers(1, timeout=float(fan_out.connect_timeout))
        except (TimeoutError, OSError):
            client.close()
            raise FanOutError(
                f"The Dask scheduler at {fan_out.address} (parameter {PARAMETER}.address) has no worker after "
                f"{fan_out.connect_timeout:g} s: start some with `dask worker {fan_out.address}` on machines that "
                "see the images and the model files at the same paths as this one."
            ) from None
        cluster = None
    else:
        # The scheduler and nannies of a LocalCluster live in this process: their INFO lines (workers
        # starting, closing) would drown the run's log. This module logs what matters (dashboard,
        # progress, tasks); warnings and errors still show.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        try:
            cluster = LocalCluster(
                n_workers=fan_out.worker_count,
                threads_per_worker=fan_out.threads_per_worker,
                processes=True,
                memory_limit=fan_out.memory_limit or 0,
                dashboard_address=fan_out.dashboard_address,
                silence_logs=logging.WARNING,
                env=_worker_environment(fan_out),
            )
        except Exception as error:
            raise FanOutError(
                f"Could not start a local Dask cluster of {fan_out.worker_count} worker processes ({error}; the "
                "workers' own errors are above). Worker processes start afresh and import the main module: a "
                'script must keep its work under `if __name__ == "__main__":`. Or set '
                f"{PARAMETER}.synchronous: true to run in this process."
            ) from error
        client = Client(cluster, set_as_default=False)
    _ACTIVE.update(key=key, cluster=cluster, client=client)
    return client


def _dashboard(client) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # no dashboard (bokeh missing, or switched off)
        return None


def _check_readable(client, paths: Sequence[str], fan_out: FanOut) -> None:
    """Stop before any task when a worker cannot open a file this process can (no shared storage)."""
    here = [str(path) for path in paths if os.access(path, os.R_OK)]
    if not here:
        return
    answers = client.run(_first_unreadable, here)
    for worker, answer in sorted(answers.items()):
        if answer:
            path, reason = answer
            folder = str(Path(path).parent)
            raise FanOutError(
                f"Dask worker {worker} cannot read {path} ({reason}), which this machine reads: every worker "
                f"needs the images at the same path as here. Mount the image folder ({folder}) on every worker "
                f"machine at that path (shared storage such as NFS), or run on a local cluster "
                f"({PARAMETER}.address: null)."
            )


def _register(client, preload: Preload, fan_out: FanOut) -> None:
    from dex_bias.fanout.plugin import PreloadPlugin

    started = time.perf_counter()
    try:
        client.register_plugin(PreloadPlugin(preload), name=preload.plugin_name)
    except Exception as error:
        where = fan_out.address or "the local cluster"
        raise FanOutError(
            f"Dask workers of {where} could not load {preload.what}: {type(error).__name__}: {error}. Every "
            "worker needs the project installed (`pip install -e .`) and the model file at the same path as "
            "this machine."
        ) from error
    logger.info(
        "%s loaded on every worker in %.1f s (once per worker, kept for every task)",
        preload.what,
        time.perf_counter() - started,
    )


# --- running a stage -----------------------------------------------------------------------------


@dataclass
class _Tally:
    tasks: int = 0
    task_seconds: float = 0.0
    workers: set = field(default_factory=set)


def run_tasks(
    stage: str,
    tasks: Sequence[Task],
    fan_out: FanOut,
    *,
    store: StageStore | None = None,
    preload: Sequence[Preload] = (),
    readable: Sequence[str] = (),
    unit: str = "image",
) -> list[Any]:
    """Run every task of ``stage`` on ``fan_out``'s engine; their results, in task order.

    ``store``: chunks already there are not computed again, and each computed chunk is written
    there as soon as it is done (its result must then be a dict of DataFrames); the results are
    read back from it, so a resumed run gives what an uninterrupted one gives. ``preload``: state
    loaded once per worker before the tasks. ``readable``: files every worker must be able to
    open (a sample of the images), checked before the tasks.

    Raises :class:`FanOutError` when the engine cannot be reached, a worker cannot read the files
    or load the state, or a task fails after its retries: the message lists the images not done
    and how to resume. Ctrl-C stops the run the same way (the message is logged).
    """
    tasks = list(tasks)
    total = sum(len(task.items) for task in tasks)
    todo = list(range(len(tasks)))
    if store is not None:
        done = store.done()
        todo = [index for index in todo if tasks[index].key not in done]
        reused = len(tasks) - len(todo)
        if reused:
            logger.info(
                "%s: resuming from %s: %d of %d chunks (%d %ss) are already done there; computing the other %d",
                stage,
                store.folder,
                reused,
                len(tasks),
                total - sum(len(tasks[index].items) for index in todo),
                unit,
                len(todo),
            )
    results: list[Any] = [None] * len(tasks)
    finished = [False] * len(tasks)
    tally = _Tally()

    def finish(index: int, output: TaskOutput) -> None:
        task = tasks[index]
        if store is not None:
            store.write(task.key, output.result, items=len(task.items), seconds=output.seconds)
        else:
            results[index] = output.result
        finished[index] = True
        tally.tasks += 1
        tally.task_seconds += output.seconds
        tally.workers.add(output.worker)
        progress.update(len(task.items))

    progress = Progress(
        stage,
        total,
        initial=total - sum(len(tasks[i].items) for i in todo),
        unit=unit,
        log_every=fan_out.log_every,
        bar=fan_out.progress,
    )
    clock = {"started": time.perf_counter()}

    def ready() -> None:
        """The engine is up and its state loaded: rates and time left count from here."""
        clock["started"] = progress.started = time.perf_counter()

    threads = 1
    try:
        if todo and fan_out.synchronous:
            logger.info(
                "%s: %d tasks of up to %d %ss in this process (dask.synchronous)",
                stage,
                len(todo),
                max(len(tasks[i].items) for i in todo),
                unit,
            )
            for item in preload:
                item.load_here(None)
            ready()
            for index in todo:
                task = tasks[index]
                finish(index, _call(task.function, task.args, task.kwargs))
        elif todo:
            threads = _run_on_dask(stage, tasks, todo, fan_out, preload, readable, unit, finish, ready)
    except BaseException as error:
        progress.close()
        if isinstance(error, FanOutError) and not any(finished) and getattr(error, "before_tasks", False):
            raise
        left = [i for i in todo if not (finished[i] or (store is not None and store.has(tasks[i].key)))]
        message = _unfinished(stage, tasks, left, store, unit, error)
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            logger.error(message)
            raise
        raise FanOutError(message) from error
    progress.close()
    if tally.tasks:
        wall = time.perf_counter() - clock["started"]
        idle = max(0.0, wall * threads - tally.task_seconds)
        logger.info(
            "%s: %d tasks on %d worker process(es): %.1f s of task time in %.1f s on %d thread(s) "
            "(%.0f %% busy; %.0f ms a task idle or in transit)",
            stage,
            tally.tasks,
            len(tally.workers),
            tally.task_seconds,
            wall,
            threads,
            100.0 * tally.task_seconds / max(wall * threads, 1e-9),
            1000.0 * idle / tally.tasks,
        )
    if store is not None:
        return [store.read(task.key) for task in tasks]
    return results


def _run_on_dask(
    stage: str,
    tasks: list[Task],
    todo: list[int],
    fan_out: FanOut,
    preload: Sequence[Preload],
    readable: Sequence[str],
    unit: str,
    finish: Callable[[int, TaskOutput], None],
    ready: Callable[[], None],
) -> int:
    from distributed import as_completed

    try:
        client = _client(fan_out)
        nthreads = client.nthreads()
        threads = max(1, sum(nthreads.values()))
        dashboard = _dashboard(client)
        logger.info(
            "%s: %d tasks of up to %d %ss on %s: %d worker(s), %d thread(s)%s",
            stage,
            len(todo),
            max(len(tasks[i].items) for i in todo),
            unit,
            fan_out.describe(),
            len(nthreads),
            threads,
            f"; Dask dashboard: {dashboard}" if dashboard else "",
        )
        _check_readable(client, readable, fan_out)
        for item in preload:
            _register(client, item, fan_out)
    except FanOutError as error:
        error.before_tasks = True
        raise
    ready()
    pending = deque(todo)
    in_flight: dict[Any, int] = {}
    completed = as_completed(loop=client.loop)
    slug = stage.replace(" ", "-")

    def submit() -> None:
        index = pending.popleft()
        task = tasks[index]
        future = client.submit(
            _call,
            task.function,
            task.args,
            task.kwargs,
            retries=int(fan_out.retries),
            pure=False,
            key=f"{slug}-{index}-{uuid.uuid4().hex[:8]}",
        )
        in_flight[future] = index
        completed.add(future)

    # A window of tasks in flight (two per thread): results come back as they finish and are
    # written at once, so neither this process nor the workers hold more than a few chunks.
    for _ in range(min(len(pending), 2 * threads)):
        submit()
    try:
        for future in completed:
            index = in_flight.pop(future)
            output = future.result()
            future.release()
            finish(index, output)
            if pending:
                submit()
    finally:
        if in_flight:
            client.cancel(list(in_flight))
    return threads


def _unfinished(
    stage: str, tasks: list[Task], left: list[int], store: StageStore | None, unit: str, error: BaseException
) -> str:
    """Which images a stopped stage did not do, and how to resume."""
    items = [item for index in left for item in tasks[index].items]
    done_chunks = len(tasks) - len(left)
    cause = "it was interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
    text = f"{stage} stopped ({cause}). {len(items)} {unit}s in {len(left)} of {len(tasks)} chunks are not done"
    if items:
        text += f", e.g. {', '.join(items[:5])}"
    listing = None
    if store is not None and items:
        listing = store.folder / f"unfinished-{time.strftime('%Y%m%dT%H%M%S')}.txt"
        try:
            listing.write_text("\n".join(items) + "\n")
            text += f" (all of them in {listing})"
        except OSError:
            listing = None
    if store is not None:
        text += (
            f". The {done_chunks} chunks done are kept in {store.folder}: run the same command again, with the "
            "same inputs and parameters, and only the missing chunks are computed."
        )
    else:
        text += ". Run the same command again to redo the stage."
    return text

"""State loaded once per process (a Dask worker, or this process in a synchronous run), by key.

A task never opens a model itself: it asks :func:`get` for the object under a key (an age model's
fingerprint, ``"dlib-align"``), which a :class:`~dex_bias.fanout.engine.Preload` put there when
the worker joined. The cache holds a few entries (least recently used dropped first), so a
long-lived cluster that audits model after model does not keep every model in memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

#: Entries kept per process (each may be an age model of up to a few hundred MB).
MAX_ENTRIES = 3

_CACHE: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.RLock()
#: Seconds each entry took to load here (for the per-task overhead report).
LOAD_SECONDS: dict[str, float] = {}


class StateMissing(LookupError):
    """A task asked for state that was never loaded in this process."""


def put(key: str, value: Any) -> None:
    """Keep ``value`` under ``key`` in this process (dropping the least recently used beyond :data:`MAX_ENTRIES`)."""
    with _LOCK:
        _CACHE[key] = value
        _CACHE.move_to_end(key)
        while len(_CACHE) > MAX_ENTRIES:
            dropped, _ = _CACHE.popitem(last=False)
            logger.debug("state %s dropped from process %d", dropped, os.getpid())


def load(key: str, loader: Callable[[], Any]) -> Any:
    """The object under ``key``, calling ``loader()`` (once per process) when it is not here yet."""
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        started = time.perf_counter()
        value = loader()
        LOAD_SECONDS[key] = time.perf_counter() - started
        put(key, value)
        return value


def get(key: str, what: str = "state") -> Any:
    """The object under ``key``; :class:`StateMissing` naming ``what`` when it was never loaded here."""
    with _LOCK:
        if key not in _CACHE:
            raise StateMissing(
                f"{what} (key {key}) is not loaded in process {os.getpid()}: it is loaded when a worker "
                "joins, by the Preload plugin dex_bias.fanout registers before it submits tasks; was this "
                "task submitted by hand?"
            )
        _CACHE.move_to_end(key)
        return _CACHE[key]


def has(key: str) -> bool:
    with _LOCK:
        return key in _CACHE


def drop(key: str) -> None:
    with _LOCK:
        _CACHE.pop(key, None)


def limit_threads(threads: int) -> None:
    """Keep this process's numerical libraries to ``threads`` threads (one Dask worker = its share of cores).

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS`` when it starts; once started, its setting is
    fixed, which is fine: a worker process only ever runs with one setting.
    """
    value = str(max(1, int(threads)))
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ[name] = value
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import sys

    if "tensorflow" in sys.modules:
        try:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(int(value))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised: the environment above was read at start
            pass

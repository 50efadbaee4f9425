"""The run ledger: which runs of a project finished, and what to do with what the others wrote.

Plain Python (folders, JSON files, process ids); the Kedro hooks in :mod:`dex_bias.runs.hooks`
drive it. A run's id is Kedro's session id, which is also the version stamp of every dataset the
run writes, so a version folder ``<filepath>/<run id>/`` belongs to exactly one run. Layout, under
the project folder::

    data/09_runs/run_manifest.json/<run id>/run_started.json    before the first node runs
    data/09_runs/run_manifest.json/<run id>/run_manifest.json   once every node has run: complete
    data/09_runs/run_manifest.json/<run id>/run_failed.json     why a failed run stopped
    <dataset filepath>/.incomplete/<run id>/<file name>          what an unfinished run wrote
    data/09_runs/run_manifest.json/.incomplete/<run id>/         its ledger folder, beside them

A version counts once its run's ``run_manifest.json`` exists. A version folder that no run
started (written by hand, or before the ledger existed) is left alone and counts as it always
did. What a failed, interrupted or killed run wrote is moved into ``.incomplete/`` next to the
versions: Kedro finds the latest version by globbing ``<filepath>/*/<file name>`` (Python's glob
or fsspec's, which unlike Python's also matches names starting with a dot), and
``.incomplete/<run id>/<file name>`` is one level deeper, so no reader ever takes it for a version.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: The ledger's folder, relative to the project (a Kedro-versioned JSON layout).
RUNS_FOLDER = Path("data") / "09_runs" / "run_manifest.json"
STARTED = "run_started.json"
MANIFEST = "run_manifest.json"
FAILED = "run_failed.json"
SET_ASIDE_NOTE = "run_set_aside.json"
#: Where an unfinished run's files go, inside each dataset's folder of versions.
INCOMPLETE = ".incomplete"
MANIFEST_FORMAT = "dex_bias.run_manifest/1"
#: Seconds a run folder without a start record is taken to be a run writing that record.
STARTING_GRACE_S = 60


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- processes --------------------------------------------------------------------------------


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a Linux process, None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "")
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and ')'
    return fields[0], fields[19]


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """What tells this process apart from a later one that reuses its pid (or a rebooted host)."""
    pid = os.getpid() if pid is None else pid
    stat = _proc_stat(pid)
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "start_ticks": stat[1] if stat else None}


def process_state(identity: dict[str, Any]) -> str:
    """``alive``, ``gone`` or ``unknown`` (another host: its processes cannot be seen from here)."""
    if identity.get("host") != socket.gethostname():
        return "unknown"
    boot_id = _boot_id()
    if identity.get("boot_id") and boot_id and identity["boot_id"] != boot_id:
        return "gone"
    pid = int(identity.get("pid", -1))
    if Path("/proc").is_dir():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):  # a zombie has finished; only its parent has not looked
            return "gone"
        started = identity.get("start_ticks")
        return "alive" if not started or not stat[1] or stat[1] == started else "gone"
    try:  # no /proc (macOS, Windows): the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except (PermissionError, OSError):
        return "alive"
    return "alive"


# --- files ------------------------------------------------------------------------------------


def write_json_once(path: Path, data: Any) -> None:
    """Write ``data`` as JSON at ``path`` all at once (a reader sees the whole file or none),
    never over an existing file."""
    if path.exists():
        raise FileExistsError(f"{path} already exists; a run's record is written once")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    try:
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at ``path``; None when absent or unreadable (a file cut off by a kill)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def file_fingerprints(path: Path, relative_to: Path | None = None) -> list[dict[str, Any]]:
    """SHA-256 and size of the file at ``path``, or of every file under the folder ``path``."""
    import hashlib

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    prints = []
    for file in files:
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        prints.append(
            {"path": display_path(file, relative_to), "sha256": digest.hexdigest(), "bytes": file.stat().st_size}
        )
    return prints


def display_path(path: Path | str, project: Path | None) -> str:
    """``path`` relative to the project when inside it (manifests stay valid when the project
    folder moves), else absolute; always with ``/``."""
    # abspath, not resolve: a project whose data/ is a link to another's (a read-only view)
    # still names its files by its own paths, as its catalog does.
    path = Path(os.path.abspath(path))
    if project is not None:
        try:
            return path.relative_to(os.path.abspath(project)).as_posix()
        except ValueError:
            pass
    return path.as_posix()


# --- the ledger -------------------------------------------------------------------------------


@dataclass
class SetAside:
    """What was moved out of the versions' way for one unfinished run."""

    run_id: str
    reason: str
    moved: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, from, to)
    record: str = ""  # the run's ledger folder after the move

    @property
    def datasets(self) -> list[str]:
        return [name for name, _, _ in self.moved]


@dataclass
class UnfinishedRun:
    run_id: str
    started: dict[str, Any]
    state: str  # alive | gone | unknown | failed


class RunLedger:
    """The ledger of one project folder (see the module docstring for the layout)."""

    def __init__(self, project_path: str | os.PathLike) -> None:
        self.project = Path(project_path)
        self.root = self.project / RUNS_FOLDER
        self._manifests: dict[str, dict[str, Any] | None] = {}

    def path(self, relative: str) -> Path:
        """A path a manifest records (relative to the project, or absolute) on this machine."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.project / candidate

    def folder(self, run_id: str) -> Path:
        return self.root / run_id

    def relative(self, path: Path | str) -> str:
        return display_path(path, self.project)

    # -- writing -------------------------------------------------------------------------------
    def start(self, run_id: str, record: dict[str, Any]) -> None:
        """Record that a run starts: its command, its process and the version folders it will write."""
        write_json_once(
            self.folder(run_id) / STARTED,
            {
                "format": MANIFEST_FORMAT,
                "run_id": run_id,
                "started_at": now_iso(),
                "process": process_identity(),
                **record,
            },
        )

    def finish(self, run_id: str, manifest: dict[str, Any]) -> Path:
        """Write the run's manifest: from now on its versions count."""
        path = self.folder(run_id) / MANIFEST
        write_json_once(
            path,
            {"format": MANIFEST_FORMAT, "run_id": run_id, "status": "complete", "finished_at": now_iso(), **manifest},
        )
        self._manifests.pop(run_id, None)
        return path

    def fail(self, run_id: str, error: dict[str, Any]) -> SetAside:
        """Record why a run stopped and set aside what it wrote (nothing to do when a sweep did already)."""
        if not (self.folder(run_id) / STARTED).exists():
            return SetAside(run_id, str(error.get("reason", "the run failed")))
        path = self.folder(run_id) / FAILED
        if not path.exists():
            write_json_once(path, {"run_id": run_id, "status": "failed", "failed_at": now_iso(), **error})
        return self.set_aside(run_id, str(error.get("reason", "the run failed")))

    # -- reading -------------------------------------------------------------------------------
    def manifest(self, run_id: str) -> dict[str, Any] | None:
        """The manifest of a complete run; None when the run is unknown or did not finish."""
        if run_id not in self._manifests:
            manifest = read_json(self.folder(run_id) / MANIFEST)
            self._manifests[run_id] = manifest if manifest and manifest.get("status") == "complete" else None
        return self._manifests[run_id]

    def started(self, run_id: str) -> dict[str, Any] | None:
        return read_json(self.folder(run_id) / STARTED)

    def unfinished(self, active_here: set[str] | frozenset[str] = frozenset()) -> list[UnfinishedRun]:
        """Runs that started and have no manifest, with whether their process still runs.

        ``active_here``: ids of runs this very process is running (a run of this process that
        is not among them was abandoned, e.g. a notebook's run stopped with Ctrl-C).
        """
        if not self.root.is_dir():
            return []
        runs = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(".") or not folder.is_dir() or (folder / MANIFEST).exists():
                continue
            started = read_json(folder / STARTED)
            if started is None:
                # Its start record is written at once before any node runs, so such a run wrote
                # nothing; a folder this young may be a run writing that record right now.
                if time.time() - folder.stat().st_mtime > STARTING_GRACE_S:
                    runs.append(UnfinishedRun(folder.name, {}, "gone"))
                continue
            if (folder / FAILED).exists():
                state = "failed"
            else:
                identity = started.get("process") or {}
                state = process_state(identity)
                if state == "alive" and identity.get("pid") == os.getpid() and folder.name not in active_here:
                    state = "gone"
            runs.append(UnfinishedRun(folder.name, started, state))
        return runs

    def running_outputs(
        self, exclude: str | None = None, active_here: set[str] | frozenset[str] = frozenset()
    ) -> list[dict[str, str]]:
        """The outputs of runs still running (or that may be: on another host), one dict each:
        ``run_id``, ``name``, ``filepath``, ``version_folder`` (relative to the project)."""
        outputs = []
        for run in self.unfinished(active_here=active_here):
            if run.run_id == exclude or run.state not in ("alive", "unknown"):
                continue
            for name, output in sorted((run.started.get("outputs") or {}).items()):
                if output.get("version_folder"):
                    outputs.append(
                        {
                            "run_id": run.run_id,
                            "name": name,
                            "filepath": output["filepath"],
                            "version_folder": output["version_folder"],
                        }
                    )
        return outputs

    def set_aside_version(self, filepath: str | os.PathLike, version: str) -> Path | None:
        """Where version ``version`` of the dataset at ``filepath`` went if its run did not finish."""
        candidate = self.path(str(filepath)) / INCOMPLETE / version
        return candidate if candidate.exists() else None

    # -- setting aside -------------------------------------------------------------------------
    def set_aside(self, run_id: str, reason: str) -> SetAside:
        """Move what run ``run_id`` wrote into ``.incomplete/`` beside each dataset's versions,
        then its ledger folder beside the others. Safe to repeat after an interruption."""
        outcome = SetAside(run_id, reason)
        folder = self.folder(run_id)
        started = read_json(folder / STARTED) or {}
        for name, output in sorted((started.get("outputs") or {}).items()):
            version_folder = output.get("version_folder")
            if not version_folder:
                continue
            source = self.path(version_folder)
            if not source.exists():
                continue  # never written, or moved already
            target = _free_name(source.parent / INCOMPLETE / source.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(source, target)
            except FileNotFoundError:
                continue  # another session moved it a moment ago
            outcome.moved.append((name, self.relative(source), self.relative(target)))
        if folder.exists():
            note = folder / SET_ASIDE_NOTE
            if not note.exists():
                write_json_once(
                    note,
                    {
                        "run_id": run_id,
                        "reason": reason,
                        "set_aside_at": now_iso(),
                        "moved": [{"dataset": n, "from": a, "to": b} for n, a, b in outcome.moved],
                    },
                )
            target = _free_name(self.root / INCOMPLETE / run_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(folder, target)
                outcome.record = self.relative(target)
            except FileNotFoundError:
                pass
        return outcome

    def sweep(self, active_here: set[str] | frozenset[str] = frozenset()) -> list[SetAside]:
        """Set aside every unfinished run whose process is gone (killed, or ended without its hooks)."""
        reasons = {
            "gone": "its process ended before the run finished (killed, or interrupted)",
            "failed": "the run failed",
        }
        return [
            self.set_aside(run.run_id, reasons[run.state])
            for run in self.unfinished(active_here)
            if run.state in reasons
        ]


def _free_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``… when taken (a run id is unique, so rarely needed)."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate

"""Kedro hooks that make a run's outputs trustworthy (registered in ``settings.HOOKS``).

- :class:`ConsistentInputsHooks`, before any node runs: each input that was persisted by an
  earlier run is read at the newest version that belongs with the others (see
  :mod:`dex_bias.runs.consistency`), pinned for the whole run; when none does, the run stops and
  says which command makes a set that does. ``--load-versions`` still decides; a mismatch it
  makes is refused the same way unless ``runs.accept_mismatched_inputs`` is true.
- :class:`RunManifestHooks`: a run records its start (its process and the version folders it
  will write) before its first node, and its manifest (for each output: the versions or content
  fingerprints of what it was made from, the parameters its nodes used, its files' SHA-256) when
  the last node has run. Only then do its versions count. A run that fails, or is interrupted,
  has what it wrote set aside at once (``.incomplete/`` beside the versions); one that is killed
  (no hook runs) is set aside by the next session (:mod:`dex_bias.runs.context`). Parquet outputs
  also carry their provenance in their own metadata (``df.attrs``).

Both work from the pipeline and the catalog alone, for any dataset name (namespaced or from a
dataset factory). ``ParallelRunner`` runs no node or dataset hooks in its workers, but the
pipeline hooks used here run in the main process; only the Parquet metadata depends on dataset
hooks, so under ``ParallelRunner`` it is not written (and a table derived from a loaded one may
carry its source's record, which names its own ``dataset`` and ``run_id``): the manifest is the record.
"""

from __future__ import annotations

import atexit
import logging
import platform
import traceback
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from dex_bias.runs.consistency import Candidate, Choice, Ref, choose_versions, newest_consistent_set
from dex_bias.runs.kedro_io import StoredDataset, is_parameter, stored_dataset
from dex_bias.runs.ledger import MANIFEST, RunLedger, SetAside, file_fingerprints
from dex_bias.schema import settings_dataclass

logger = logging.getLogger("dex_bias.runs")

#: ``df.attrs`` key (kept in Parquet metadata by pandas) for a table's provenance.
PROVENANCE_ATTR = "dex_bias_provenance"
#: The parameter that lets a run read inputs that do not belong together.
ACCEPT_SWITCH = "runs.accept_mismatched_inputs"


class InconsistentInputsError(RuntimeError):
    """The inputs of a run do not belong together; the message names them and the fix."""


class InputVersionError(RuntimeError):
    """``--load-versions`` names a version that cannot be read; the message says which can."""


@dataclass
class _RunState:
    run_id: str
    ledger: RunLedger
    command: dict[str, Any]
    outputs: dict[str, StoredDataset]
    inputs: dict[str, dict[str, Any]]
    parameters: dict[str, Any]
    lineage: dict[str, dict[str, Any]]
    decisions: dict[str, Any] = field(default_factory=dict)


#: Runs this process has started and not yet finished (their hooks may still come).
_ACTIVE: dict[str, _RunState] = {}
#: What ConsistentInputsHooks decided for a run, for its manifest.
_DECISIONS: dict[str, dict[str, Any]] = {}
_EXIT_HANDLER_REGISTERED = False


def active_run_ids() -> frozenset[str]:
    return frozenset(_ACTIVE)


def forget_runs(run_ids: set[str]) -> None:
    """Runs set aside by a sweep in this process: their hooks, if any come, have nothing left to do."""
    for run_id in run_ids:
        _ACTIVE.pop(run_id, None)


def describe_set_aside(outcome: SetAside, why: str) -> str:
    """One log message for what a run that did not finish left behind."""
    if not outcome.moved:
        return f"Run {outcome.run_id} did not finish ({why}); it had written nothing."
    where = "; ".join(f"{name} -> {target}" for name, _, target in outcome.moved)
    return (
        f"Run {outcome.run_id} did not finish ({why}): what it wrote is set aside and is never read as "
        f"the latest version ({len(outcome.moved)} dataset(s): {where}). The latest complete versions "
        "are unchanged."
    )


@settings_dataclass
class RunsSettings:
    """``params:runs`` (conf/base/parameters_runs.yml), read by these hooks: whether a run may read
    inputs that do not belong together (``accept_mismatched_inputs``)."""

    accept_mismatched_inputs: bool


def _run_settings(catalog: Any) -> RunsSettings:
    return RunsSettings(**catalog.load("params:runs"))


def _plain(value: Any) -> Any:
    """Parameters as JSON: dicts, lists, numbers, strings (settings dataclasses as their dicts;
    anything else as its text)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _command(run_params: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "tags",
        "from_nodes",
        "to_nodes",
        "node_names",
        "from_inputs",
        "to_outputs",
        "namespaces",
        "load_versions",
        "runtime_params",
    )
    return {
        "pipeline_names": _plain(run_params["pipeline_names"] or ["__default__"]),
        "env": run_params["env"],
        **{key: _plain(run_params[key]) for key in keys if run_params[key] not in (None, [], {}, ())},
    }


def _kedro_run(pipelines: list[str] | None, env: str | None, load_versions: dict[str, str] | None = None) -> str:
    parts = ["kedro run"]
    if pipelines:
        parts.append("--pipelines=" + ",".join(pipelines))
    if env and env != "local":
        parts.append(f"--env {env}")
    if load_versions:
        parts.append(
            "--load-versions=" + ",".join(f"{name}:{version}" for name, version in sorted(load_versions.items()))
        )
    return " ".join(parts)


def _in_flow_order(names: set[str]) -> list[str]:
    from dex_bias.pipeline_registry import FLOW

    return sorted(names, key=lambda name: (FLOW.index(name) if name in FLOW else len(FLOW), name))


def _makers(datasets: set[str]) -> set[str]:
    """The pipelines that write ``datasets`` (as far as the registry can tell): a pipeline folder
    where one does, else whatever registered pipeline does (a model's namespaced branch, say)."""
    try:
        from dex_bias.hooks import producers_of, project_pipelines
        from dex_bias.pipeline_registry import register_pipelines

        folders = project_pipelines()
        registered = {**register_pipelines(), **folders}
    except Exception:  # noqa: BLE001 - a hint, never a reason to fail differently
        return set()
    return {maker for name in datasets for maker in (producers_of(name, folders) or producers_of(name, registered))}


class ConsistentInputsHooks:
    """Read, for each persisted input, the newest version that belongs with the others."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        run_id = run_params["run_id"]
        ledger = RunLedger(run_params["project_path"])
        accept = _run_settings(catalog).accept_mismatched_inputs
        user_pins = dict(run_params["load_versions"] or {})
        running = {output["version_folder"]: output["run_id"] for output in ledger.running_outputs(exclude=run_id)}
        stored: dict[str, StoredDataset] = {}
        candidates: list[Candidate] = []
        for name in sorted(pipeline.inputs()):
            dataset = stored_dataset(catalog, name)
            if dataset is None or dataset.filepath is None:
                continue
            stored[name] = dataset
            key = ledger.relative(dataset.filepath)
            if dataset.versioned:
                on_disk = dataset.versions()
                readable = [v for v in on_disk if ledger.relative(dataset.filepath / v) not in running]
                pinned = user_pins.get(name)
                if pinned is not None:
                    self._check_pin(name, dataset, pinned, on_disk, readable, running, ledger)
                candidates.append(Candidate(name, key, readable, pinned, dataset.optional))
            else:
                identity = dataset.content_version()
                if identity is not None:
                    candidates.append(Candidate(name, key, [identity], identity, dataset.optional))
        if not candidates:
            return

        def provenance(key: str, version: str) -> list[Ref] | None:
            manifest = ledger.manifest(version) if not version.startswith("sha256:") else None
            for output in (manifest or {}).get("outputs", {}).values():
                if output.get("filepath") == key:
                    return [
                        Ref(name, item["filepath"], item["version"])
                        for name, item in output.get("inputs", {}).items()
                        if item.get("version")
                    ]
            return None

        choice = choose_versions(candidates, provenance, accept_mismatch=accept)
        if choice.clashes and not accept:
            raise InconsistentInputsError(self._refusal(choice, candidates, provenance, run_params))
        decisions: dict[str, Any] = {"chosen": {}, "left_out": {}, "mismatches_accepted": [], "older": {}}
        for name, version in choice.versions.items():
            dataset = stored[name]
            if version is None:
                clash = next(c for c in choice.left_out if c.dataset.name == name)
                reason = f"it does not belong with this run's other inputs: {clash.explain()}"
                dataset.leave_out(reason)
                decisions["left_out"][name] = reason
                logger.warning(
                    "%s is left out of this run: %s. To include it, make it from the same data (e.g. %s).",
                    name,
                    clash.explain(),
                    _kedro_run(
                        _in_flow_order(_makers({name}) | set(run_params["pipeline_names"] or [])), run_params["env"]
                    ),
                )
            elif dataset.versioned:
                dataset.pin(version)
                decisions["chosen"][name] = version
        for name, (version, newest, clash) in choice.older.items():
            decisions["older"][name] = {"read": version, "newest": newest, "why": clash.explain()}
            logger.info("%s: reading %s, not the newer %s (%s)", name, version, newest, clash.explain())
        for clash in choice.clashes:
            decisions["mismatches_accepted"].append(clash.explain())
            logger.warning(
                "Reading inputs that do not belong together (%s is true): %s", ACCEPT_SWITCH, clash.explain()
            )
        _DECISIONS[run_id] = decisions
        logger.info(
            "Inputs of run %s: %s",
            run_id,
            ", ".join(
                f"{name} {version}" if version else f"{name} (left out)"
                for name, version in sorted(choice.versions.items())
            ),
        )

    @staticmethod
    def _check_pin(
        name: str,
        dataset: StoredDataset,
        pinned: str,
        on_disk: list[str],
        readable: list[str],
        running: dict[str, str],
        ledger: RunLedger,
    ) -> None:
        newest = ", ".join(readable[:3]) or "none"
        if pinned in readable:
            return
        if pinned in on_disk:
            run_id = running[ledger.relative(dataset.filepath / pinned)]
            raise InputVersionError(
                f"--load-versions asks for {name} {pinned}, which run {run_id} is still writing; no node was run. "
                f"Wait for that run to finish, or pick a finished version (newest: {newest})."
            )
        set_aside = ledger.set_aside_version(dataset.filepath, pinned)
        if set_aside is not None:
            raise InputVersionError(
                f"--load-versions asks for {name} {pinned}, which was written by a run that did not finish; its files "
                f"are set aside in {ledger.relative(set_aside)} and are not a version. No node was run. Pick a "
                f"finished version (newest: {newest})."
            )
        raise InputVersionError(
            f"--load-versions asks for {name} {pinned}, but {ledger.relative(dataset.filepath)} has no such version; "
            f"no node was run. Versions are the folder names there (newest: {newest})."
        )

    @staticmethod
    def _refusal(choice: Choice, candidates: list[Candidate], provenance: Any, run_params: dict[str, Any]) -> str:
        pipelines = _in_flow_order(set(run_params["pipeline_names"] or []))
        env = run_params["env"]
        lines = ["The inputs of this run do not belong together, so no node was run:"]
        lines += [f"  - {clash.explain()}" for clash in choice.clashes]
        stale = {clash.dataset.name for clash in choice.clashes}
        makers = _makers(stale)
        if makers:
            lines.append(
                f"To make them from the same data "
                f"(the newest {', '.join(sorted({c.other.name for c in choice.clashes}))}): "
                f"{_kedro_run(_in_flow_order(makers | set(pipelines)), env)}"
            )
        else:
            lines.append(f"To make them from the same data: run again whatever makes {', '.join(sorted(stale))}.")
        alternative = newest_consistent_set(
            [
                Candidate(
                    c.name,
                    c.key,
                    c.versions,
                    None if c.pinned and not c.pinned.startswith("sha256:") else c.pinned,
                    c.optional,
                )
                for c in candidates
            ],
            provenance,
        )
        if alternative:
            versioned = {name: version for name, version in alternative.items() if not version.startswith("sha256:")}
            lines.append(
                f"To read the newest versions that do belong together: {_kedro_run(pipelines, env, versioned)}"
            )
        lines.append(
            f"To run on these versions anyway: add --params {ACCEPT_SWITCH}=true (the mismatch is then "
            "logged and recorded in the run's manifest)."
        )
        return "\n".join(lines)


def _finish_interrupted_runs() -> None:
    """At interpreter exit: runs still active were interrupted (Ctrl-C, sys.exit in a node)."""
    for run_id, state in list(_ACTIVE.items()):
        _ACTIVE.pop(run_id, None)
        try:
            outcome = state.ledger.fail(run_id, {"reason": "the run was interrupted before it finished"})
        except Exception:  # noqa: BLE001 - the next session's sweep sets it aside instead
            continue
        logger.warning(describe_set_aside(outcome, "interrupted"))


class RunManifestHooks:
    """A start record before the first node, a manifest after the last; failures set aside."""

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        global _EXIT_HANDLER_REGISTERED
        run_id = run_params["run_id"]
        project = Path(run_params["project_path"])
        ledger = RunLedger(project)
        for earlier, state in list(_ACTIVE.items()):  # a run of this process that never ended: abandoned
            _ACTIVE.pop(earlier, None)
            logger.warning(
                describe_set_aside(
                    state.ledger.fail(earlier, {"reason": "abandoned in this process"}), "abandoned in this process"
                )
            )
        outputs = {
            name: dataset
            for name in sorted(pipeline.all_outputs())
            if (dataset := stored_dataset(catalog, name)) is not None and dataset.filepath is not None
        }
        inputs = {}
        for name in sorted(pipeline.inputs()):
            dataset = stored_dataset(catalog, name)
            if dataset is None or dataset.filepath is None:
                described = None if is_parameter(name) else catalog.get(name)
                if described is not None and type(described).__name__ not in ("MemoryDataset", "SharedMemoryDataset"):
                    inputs[name] = {"dataset": str(described)}  # no local file to fingerprint: what it is
                continue
            record: dict[str, Any] = {"filepath": ledger.relative(dataset.filepath)}
            if dataset.left_out:
                record["left_out"] = dataset.left_out
            else:
                version = dataset.identity()
                record["version"] = version
                where = dataset.version_folder(version) if dataset.versioned and version else dataset.filepath
                record["files"] = file_fingerprints(where, project) if where is not None else []
            inputs[name] = record
        parameters = {
            name: _plain(catalog.get(name).load())
            for name in sorted(pipeline.inputs())
            if is_parameter(name) and catalog.get(name) is not None
        }
        command = _command(run_params)
        state = _RunState(
            run_id,
            ledger,
            command,
            outputs,
            inputs,
            parameters,
            self._lineage(pipeline, outputs, inputs, run_id, ledger),
            _DECISIONS.pop(run_id, {}),
        )
        ledger.start(
            run_id,
            {
                "command": command,
                "outputs": {
                    name: {
                        "filepath": ledger.relative(dataset.filepath),
                        "version_folder": (
                            ledger.relative(dataset.version_folder(run_id)) if dataset.versioned else None
                        ),
                    }
                    for name, dataset in outputs.items()
                },
            },
        )
        _ACTIVE[run_id] = state
        if not _EXIT_HANDLER_REGISTERED:
            atexit.register(_finish_interrupted_runs)
            _EXIT_HANDLER_REGISTERED = True
        unversioned = sorted(name for name, dataset in outputs.items() if not dataset.versioned)
        if unversioned:
            logger.warning(
                "Not versioned, so not protected if this run fails (a failed run may leave them half-written): %s",
                ", ".join(unversioned),
            )

    @staticmethod
    def _lineage(
        pipeline: Pipeline,
        outputs: dict[str, StoredDataset],
        inputs: dict[str, dict[str, Any]],
        run_id: str,
        ledger: RunLedger,
    ) -> dict[str, dict[str, Any]]:
        """For each persisted output: the nodes that made it (through in-memory datasets), the
        persisted datasets they read, with their versions, and the parameters they used."""
        maker = {output: node for node in pipeline.nodes for output in node.outputs}

        def walk(name: str, nodes: set[str], reads: dict[str, dict[str, Any]], params: set[str]) -> None:
            node = maker[name]
            if node.name in nodes:
                return
            nodes.add(node.name)
            for source in node.inputs:
                if is_parameter(source):
                    params.add(source)
                elif source in outputs:  # persisted by this very run
                    dataset = outputs[source]
                    reads[source] = {
                        "filepath": ledger.relative(dataset.filepath),
                        "version": run_id if dataset.versioned else None,
                    }
                elif source in maker:  # in memory: made by an earlier node of this run
                    walk(source, nodes, reads, params)
                elif source in inputs:
                    record = inputs[source]
                    reads[source] = {
                        key: record[key] for key in ("filepath", "version", "left_out", "dataset") if key in record
                    }

        lineage = {}
        for name in outputs:
            nodes: set[str] = set()
            reads: dict[str, dict[str, Any]] = {}
            params: set[str] = set()
            walk(name, nodes, reads, params)
            lineage[name] = {
                "made_by": sorted(nodes),
                "inputs": dict(sorted(reads.items())),
                "parameters": sorted(params),
            }
        return lineage

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        state = next(reversed(_ACTIVE.values()), None) if _ACTIVE else None
        if state is None or dataset_name not in state.lineage or not hasattr(data, "attrs"):
            return
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover
            return
        if isinstance(data, pd.DataFrame):
            lineage = state.lineage[dataset_name]
            data.attrs[PROVENANCE_ATTR] = {
                "run_id": state.run_id,
                "dataset": dataset_name,
                "made_by": lineage["made_by"],
                "inputs": {name: read.get("version") for name, read in lineage["inputs"].items()},
                "parameters": lineage["parameters"],
                "manifest": state.ledger.relative(state.ledger.folder(state.run_id) / MANIFEST),
            }

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any) -> None:
        # An input's record describes that input: it must not ride along (pandas copies attrs
        # into derived tables) into the node's outputs.
        attrs = getattr(data, "attrs", None)
        if isinstance(attrs, dict):
            attrs.pop(PROVENANCE_ATTR, None)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], run_result: Any, pipeline: Pipeline, catalog: Any) -> None:
        run_id = run_params["run_id"]
        state = _ACTIVE.get(run_id)
        if state is None:
            return  # set aside already (a sweep in this process): nothing of it counts
        project = state.ledger.project
        outputs = {}
        for name, dataset in state.outputs.items():
            lineage = state.lineage[name]
            inputs = {}
            for source, read in lineage["inputs"].items():
                if read.get("version") is None and source in state.outputs:  # unversioned, made here
                    read = {**read, "version": state.outputs[source].content_version()}
                inputs[source] = read
            where = dataset.version_folder(run_id) if dataset.versioned else dataset.filepath
            outputs[name] = {
                "filepath": state.ledger.relative(dataset.filepath),
                "version": run_id if dataset.versioned else dataset.content_version(),
                "files": file_fingerprints(where, project) if where is not None else [],
                "made_by": lineage["made_by"],
                "inputs": inputs,
                "parameters": lineage["parameters"],
            }
        from kedro import __version__ as kedro_version

        from dex_bias import __version__ as dex_bias_version

        manifest = {
            "started_at": (state.ledger.started(run_id) or {}).get("started_at"),
            "command": state.command,
            "software": {"dex_bias": dex_bias_version, "kedro": kedro_version, "python": platform.python_version()},
            "inputs": state.inputs,
            "outputs": outputs,
            "parameters": state.parameters,
            **({"decisions": state.decisions} if any(state.decisions.values()) else {}),
        }
        path = state.ledger.finish(run_id, manifest)
        _ACTIVE.pop(run_id, None)
        logger.info(
            "Run %s is complete: %d output(s) recorded in %s", run_id, len(outputs), state.ledger.relative(path)
        )

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        run_id = run_params["run_id"]
        state = _ACTIVE.pop(run_id, None)
        if state is None:
            return
        reason = f"the run failed: {type(error).__name__}: {error}"
        outcome = state.ledger.fail(
            run_id,
            {
                "reason": reason,
                "error_type": type(error).__name__,
                "message": str(error),
                "traceback": traceback.format_exception(error)[-6:],
            },
        )
        logger.warning(
            describe_set_aside(outcome, f"{type(error).__name__}")
            + (
                " Kedro's --from-nodes suggestion reads the latest complete versions, not this run's."
                if outcome.moved
                else ""
            )
        )

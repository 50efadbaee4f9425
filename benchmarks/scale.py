"""How explain (and infer, and align) scale on Dask: images/s on 1 and 2 workers, memory at 1x and 4x the
images, the cost of a task, and how long all of UTKFace would take per model on N workers.

    python benchmarks/scale.py [--images 32] [--repeats 2] [--num-samples 1000] [--model-images 3]
                               [--models compact,dlib_age_v1,yu4u_wrn_16_8_v05] [--root /path/to/project]

Images: UTKFace chips from ``../shared/data/utkface_crop_part1.tar`` where present (a seeded sample,
aligned here first), else demo faces made by ``dex_bias.demo``. The explain stage is the pipeline's
own (:func:`dex_bias.explain.tasks.explain` ``"regions"``: crops cut on the workers, LIME over the 14
regions, ``--num-samples`` perturbations, chunks of ``explain.chunk_size``), on a local Dask cluster:

1. speed: the same ``--images`` faces explained on a cluster of 1 worker, then of 2 (each warmed up
   on 2 other faces first: the model loaded and its forward pass traced, as in a long run),
   ``--repeats`` times alternately, each keeping its best;
2. memory: the peak resident memory of this process and every worker process together (sampled
   every 50 ms) while explaining ``--images`` faces and then 4x as many, each on a fresh cluster;
3. per task: 400 empty tasks through the same mechanism (dispatch, a result back, bookkeeping),
   beside the time a worker took to load the model once (what a task would pay without the cache);
4. per model (``--models``; a declared model whose file is absent here is skipped, saying how to
   fetch it): seconds per face on one worker for align, infer and explain, and from them and the
   measured 2-worker scaling, the hours all 23,708 UTKFace images would take on N workers.

The machine may be shared: the 1-minute load average is printed beside each measurement. The last
line is ``ratio=<explain images/s on 2 workers / on 1 worker>`` (target >= 1.7 on 2 idle cores).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dex_bias.parameters import project_parameters  # noqa: E402

SHARED_TAR = ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"
UTKFACE_IMAGES = 23_708
WORKER_COUNTS = (1, 2, 8, 32, 128)


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}/{os.cpu_count()} CPUs"


def sample_faces(count: int, folder: Path, seed: int = 12) -> pd.DataFrame:
    """``count`` faces with labels and paths: UTKFace chips when the tar is here, else demo faces."""
    from dex_bias.utkface import face_row, parse_utkface_name

    if SHARED_TAR.exists():
        with tarfile.open(SHARED_TAR) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith(".jpg.chip.jpg")]
            chosen = random.Random(seed).sample(members, count)
            tar.extractall(folder, members=chosen, filter="data")
        paths = sorted(folder.rglob("*.jpg.chip.jpg"))
        source = "UTKFace crop_part1 chips"
    else:
        from PIL import Image

        from dex_bias.demo.generate import plan_demo, render_demo_face

        demo = replace(project_parameters(ROOT / "conf", env="base").ingest.demo, count=count, seed=seed, size=200)
        paths = []
        for face, rng in plan_demo(demo):
            path = folder / face.file_name
            Image.fromarray(render_demo_face(face, rng, 200)[0]).save(path)
            paths.append(path)
        source = "demo faces (no UTKFace tar here)"
    rows = [face_row(path, parse_utkface_name(path.name)) for path in paths]
    print(f"images: {len(rows)} {source}")
    return pd.DataFrame(rows)


class PeakMemory:
    """Peak resident memory of this process plus all its descendants (the cluster's workers), sampled."""

    def __init__(self, every: float = 0.05):
        import psutil

        self._psutil, self.every, self.peak, self.peak_workers = psutil, every, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            total, workers = me.memory_info().rss, 0
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except self._psutil.Error:
                    continue
                total += rss
                workers = max(workers, rss)
            self.peak, self.peak_workers = max(self.peak, total), max(self.peak_workers, workers)
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def align_settings(parameters):
    """The ``AlignSettings`` the project's ``align`` parameters state."""
    from dex_bias.faces.detect import AlignSettings

    align = parameters.align
    return AlignSettings.from_parameters(align.detection, align.crop, align.five_point)


def explain_targets(faces: pd.DataFrame, model, parameters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Align (in this process) and predict the faces, then select them as the explain node does:
    ``(explain targets, faces joined with their landmarks)``."""
    from dex_bias.faces.align import align_table
    from dex_bias.models.inference import join_faces_and_landmarks, predict_table
    from dex_bias.pipelines.explain.nodes import select_images

    here = replace(parameters.dask, synchronous=True, progress=False)
    landmarks, _ = align_table(faces, align_settings(parameters), here, chunk_size=parameters.align.chunk_size)
    table, _ = join_faces_and_landmarks(faces, landmarks)
    infer = parameters.infer
    predictions, _ = predict_table(
        model,
        table,
        here,
        batch_size=infer.batch_size,
        chunk_size=infer.chunk_size,
        padding=infer.crop_padding,
        workers=infer.crop_workers,
    )
    targets, _ = select_images(predictions, landmarks, faces, parameters.explain)
    return targets, table


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32, help="faces explained for the speed and the 1x memory run")
    parser.add_argument("--repeats", type=int, default=2, help="speed runs per worker count (the best is kept)")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--models", default="compact,dlib_age_v1,yu4u_wrn_16_8_v05")
    parser.add_argument("--model-images", type=int, default=3, help="faces explained per model for the table")
    parser.add_argument("--root", default=str(ROOT), help="where declared models' relative files start")
    args = parser.parse_args()

    import keras

    from dex_bias.explain import tasks
    from dex_bias.fanout import Task, close_clusters, run_tasks
    from dex_bias.fanout.engine import _ACTIVE, _first_unreadable
    from dex_bias.models import build_model

    parameters = project_parameters(
        ROOT / "conf",
        env="base",
        overrides={
            "explain.lime.num_samples": args.num_samples,
            "explain.max_images": None,
            "dask.progress": False,
            "dask.log_every": 3600,
            "dask.dashboard_address": None,
        },
    )
    settings = parameters.explain
    chunk = settings.chunk_size
    keras.utils.set_random_seed(3)
    model = build_model("compact")  # the demo's layout; random weights: speed only

    def engine_of(workers: int):
        return replace(parameters.dask, workers=workers)

    print(f"{os.cpu_count()} CPUs; explain: {args.num_samples} samples a face, chunks of {chunk} faces; {load()}")

    with tempfile.TemporaryDirectory(prefix="dex_bias_scale_") as scratch:
        needed = 4 * args.images + 2
        faces = sample_faces(needed + 8, Path(scratch))
        targets, table = explain_targets(faces, model, parameters)
        targets = targets.head(needed)
        if len(targets) < needed:
            raise SystemExit(f"only {len(targets)} faces were aligned; ask for fewer --images")
        warm, measured, many = targets.iloc[:2], targets.iloc[2 : 2 + args.images], targets.iloc[2:needed]

        # 1. speed on 1 and 2 workers, alternating, each keeping its best (the machine may be shared)
        rates = {1: 0.0, 2: 0.0}
        for repeat in range(args.repeats):
            for workers in (1, 2):
                close_clusters()
                engine = engine_of(workers)
                tasks.explain("regions", warm, model, settings, engine, chunk_size=1)
                seconds, _ = timed(tasks.explain, "regions", measured, model, settings, engine, chunk_size=chunk)
                rates[workers] = max(rates[workers], len(measured) / seconds)
                print(
                    f"explain on {workers} worker(s), run {repeat + 1}: {len(measured)} faces in {seconds:.1f} s = "
                    f"{len(measured) / seconds:.3f} images/s ({seconds / len(measured):.2f} s a face); {load()}"
                )
        print(f"explain, best of {args.repeats}: 1 worker {rates[1]:.3f} images/s, 2 workers {rates[2]:.3f} images/s")

        # 3. per-task overhead, on the warm 2-worker cluster
        empty = [Task(str(k), (f"t{k}",), _first_unreadable, ([],)) for k in range(400)]
        seconds, _ = timed(run_tasks, "empty tasks", empty, engine_of(2))
        loads = _ACTIVE["client"].run(lambda: dict(__import__("dex_bias.fanout.state").fanout.state.LOAD_SECONDS))
        model_load = max((s for worker in loads.values() for s in worker.values()), default=float("nan"))
        print(
            f"per task: {1000 * seconds / len(empty):.1f} ms for an empty task on 2 workers (dispatch, result, "
            f"bookkeeping; 400 tasks); the model's one load on a worker took {model_load:.2f} s; {load()}"
        )

        # 2. memory at 1x and 4x the faces, each on a fresh 2-worker cluster
        peaks = {}
        for label, rows in (("1x", measured), ("4x", many)):
            close_clusters()
            engine = engine_of(2)
            with PeakMemory() as memory:
                seconds, _ = timed(tasks.explain, "regions", rows, model, settings, engine, chunk_size=chunk)
            peaks[label] = memory.peak
            print(
                f"memory, {label} ({len(rows)} faces, {seconds:.0f} s): peak {memory.peak / 2**20:.0f} MiB in all "
                f"(this process and its workers), largest worker {memory.peak_workers / 2**20:.0f} MiB; {load()}"
            )
        print(f"memory 4x / 1x: {peaks['4x'] / peaks['1x']:.3f} (target within 1.2)")

        # 4. per model: seconds a face on one worker, and all of UTKFace on N workers
        close_clusters()
        efficiency = min(1.0, rates[2] / rates[1] / 2)  # more than 1 is noise on a shared machine
        one = engine_of(1)
        rows_out = []
        few = measured.head(args.model_images)
        align_seconds = None
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            if name == "compact":
                candidate = model
            else:
                from dex_bias.models.registry import published_models
                from dex_bias.models.runtime import load_estimator
                from dex_bias.models.weights import WeightsFileError

                try:
                    candidate = load_estimator(published_models()[name], root=args.root)
                except WeightsFileError as error:
                    print(f"{name}: skipped ({str(error).splitlines()[0]})")
                    continue
            from dex_bias.faces.align import align_table
            from dex_bias.models.inference import predict_table

            infer = parameters.infer
            predicting = dict(batch_size=infer.batch_size, padding=infer.crop_padding, workers=infer.crop_workers)
            if align_seconds is None:
                align_faces = faces.head(32)
                aligning = dict(chunk_size=parameters.align.chunk_size)
                align_table(align_faces.head(2), align_settings(parameters), one, **aligning)
                seconds, _ = timed(align_table, align_faces, align_settings(parameters), one, **aligning)
                align_seconds = seconds / len(align_faces)
            predict_table(candidate, table.head(8), one, chunk_size=infer.chunk_size, **predicting)
            seconds, _ = timed(predict_table, candidate, table.head(64), one, chunk_size=64, **predicting)
            infer_seconds = seconds / min(64, len(table))
            tasks.explain("regions", warm.head(1), candidate, settings, one, chunk_size=1)
            seconds, _ = timed(tasks.explain, "regions", few, candidate, settings, one, chunk_size=chunk)
            explain_seconds = seconds / len(few)
            rows_out.append((name, align_seconds, infer_seconds, explain_seconds))
            print(
                f"{name}, one worker: align {align_seconds:.3f} s, infer {infer_seconds:.4f} s, explain "
                f"{explain_seconds:.2f} s a face ({args.num_samples} samples); {load()}"
            )
        close_clusters()

    print()
    print(
        f"All of UTKFace ({UTKFACE_IMAGES:,} images), hours on N workers (1 core each; from the per-face times "
        f"above and a measured 2-worker efficiency of {efficiency:.2f} per worker, assumed to hold for more "
        f"workers):"
    )
    print("| model | stage | " + " | ".join(f"N={n}" for n in WORKER_COUNTS) + " |")
    print("|---|---|" + "---|" * len(WORKER_COUNTS))
    for name, align_s, infer_s, explain_s in rows_out:
        for stage, per_face in (("align", align_s), ("infer", infer_s), ("explain (LIME)", explain_s)):
            hours = [UTKFACE_IMAGES * per_face / (n * (1.0 if n == 1 else efficiency)) / 3600 for n in WORKER_COUNTS]
            print(f"| {name} | {stage} | " + " | ".join(f"{h:.2f}" if h < 10 else f"{h:.0f}" for h in hours) + " |")
    print(f"ratio={rates[2] / rates[1]:.3f}")


if __name__ == "__main__":
    main()

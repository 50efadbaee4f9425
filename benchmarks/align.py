"""Speed of the align pipeline against a bare single-process dlib loop, on the same real chips.

    python benchmarks/align.py [--images 500] [--repeats 2] [--seed 0]

Sides, each starting cold (loading dlib's detector and 68-point shape predictor itself):

1. ours: the align node ``align_faces`` with the project's parameters
   (``conf/base/parameters_align.yml`` and ``parameters_dask.yml``: a local Dask cluster started
   afresh, one worker process per core, chunks of images per task,
   decoding through ``dex_bias.imaging.load_rgb``, failures recorded, tables built);
2. bare: one Python loop in this process doing the same dlib work: Pillow decode to RGB,
   ``detector.run`` at upsample 1, then the same fallbacks (the border padded by 25 % of the
   side, then upsample 2), the shape predictor on the most confident face.

Images: a seeded sample of ``--images`` chips from ``../shared/data/utkface_crop_part1.tar``
(skipped, with a message, where it is absent). Sides alternate ``--repeats`` times and each
keeps its best (the machine may be shared). Both sides must find the same faces. The last line
is ``ratio=<ours images/s over bare images/s>`` (target ≥ 0.9).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED_TAR = ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"

from dex_bias.faces.detect import shape_predictor_path  # noqa: E402
from dex_bias.parameters import project_parameters  # noqa: E402
from dex_bias.pipelines.align.nodes import align_faces  # noqa: E402


def sample_chips(count: int, seed: int, folder: Path) -> list[Path]:
    with tarfile.open(SHARED_TAR) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".jpg.chip.jpg")), key=lambda m: m.name)
        chosen = random.Random(seed).sample(members, min(count, len(members)))
        tar.extractall(folder, members=chosen, filter="data")
    return [folder / m.name for m in chosen]


def bare_loop(paths: list[Path]) -> tuple[float, int]:
    """The same dlib work, written plainly: seconds taken and faces found."""
    import dlib
    from PIL import Image

    started = time.perf_counter()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_predictor_path()))
    found = 0
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        searched, pad = image, 0
        boxes, scores, _ = detector.run(image, 1, 0.0)
        if not boxes:
            pad = round(0.25 * max(image.shape[:2]))
            searched = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            boxes, scores, _ = detector.run(searched, 1, 0.0)
        if not boxes:
            searched, pad = image, 0
            boxes, scores, _ = detector.run(image, 2, 0.0)
        if not boxes:
            continue
        shape = predictor(searched, boxes[int(np.argmax(scores))])
        points = np.array([(shape.part(k).x - pad, shape.part(k).y - pad) for k in range(68)])
        found += points.shape[0] == 68
    return time.perf_counter() - started, found


def ours(paths: list[Path], params, dask) -> tuple[float, int]:
    faces = pd.DataFrame({"image_id": [p.name for p in paths], "path": [str(p) for p in paths]})
    started = time.perf_counter()
    from dex_bias.fanout import close_clusters

    close_clusters()  # cold: the cluster's start counts, as in a `kedro run`
    landmarks, _ = align_faces(faces, params.detection, params.crop, params.five_point, params.chunk_size, dask)
    return time.perf_counter() - started, len(landmarks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--synchronous",
        action="store_true",
        help="our side in this process (dask.synchronous) instead of a local Dask cluster",
    )
    parser.add_argument("--workers", type=int, help="override dask.workers for our side")
    args = parser.parse_args()
    if not SHARED_TAR.exists():
        print(f"skipped: the real chips are not here ({SHARED_TAR} is absent)")
        return 0
    overrides = {"dask.progress": False, "dask.synchronous": args.synchronous}
    if args.workers:
        overrides["dask.workers"] = args.workers
    parameters = project_parameters(ROOT / "conf", env="base", overrides=overrides)
    params, dask = parameters.align, parameters.dask
    with tempfile.TemporaryDirectory() as scratch:
        paths = sample_chips(args.images, args.seed, Path(scratch))
        engine = "this process" if dask.synchronous else f"local Dask cluster, {dask.workers or os.cpu_count()} workers"
        print(f"{len(paths)} real chips; {os.cpu_count()} cores; ours: {engine}")
        best = {"ours": np.inf, "bare": np.inf}
        found = {}
        for repeat in range(args.repeats):
            for side, run in (("ours", lambda: ours(paths, params, dask)), ("bare", lambda: bare_loop(paths))):
                seconds, found[side] = run()
                best[side] = min(best[side], seconds)
                print(f"  repeat {repeat + 1} {side}: {seconds:.2f} s, {found[side]} faces")
    if found["ours"] != found["bare"]:
        print(f"warning: the sides found different numbers of faces ({found})")
    speed = {side: len(paths) / seconds for side, seconds in best.items()}
    print(f"ours (align_faces, Dask): {speed['ours']:.1f} images/s")
    print(f"bare (one process loop):  {speed['bare']:.1f} images/s")
    print(f"ratio={speed['ours'] / speed['bare']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

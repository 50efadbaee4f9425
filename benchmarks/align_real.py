"""Detection rate and wall time of the align pipeline on the full UTKFace ``crop_part1``.

    python benchmarks/align_real.py [--image-dir /tmp/crop_part1] [--workers N]

The faces are the well-named chips (9,778 of the 9,780 files; the two with a missing race
field are what ingest quarantines). They go through the align node, ``align_faces``, with the
project's parameters (``conf/base/parameters_align.yml``), as ``kedro run --pipelines=align``
would. Prints the detection rate (the article's pipeline found a face in 99.06 %), the faces
per detection stage, the failures by reason, and the wall time. Where the tar in ``../shared``
is absent and no ``--image-dir`` is given, it says so and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
SHARED_TAR = ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"
ARTICLE_DETECTION_RATE = 0.9906

from dex_bias.parameters import project_parameters  # noqa: E402
from dex_bias.pipelines.align.nodes import align_faces  # noqa: E402
from dex_bias.utkface import LabelError, parse_utkface_name  # noqa: E402


def chips_folder(image_dir: str | None, scratch: Path) -> Path | None:
    if image_dir:
        return Path(image_dir)
    if not SHARED_TAR.exists():
        return None
    with tarfile.open(SHARED_TAR) as tar:
        tar.extractall(scratch, filter="data")
    return scratch / "crop_part1"


def faces_table(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    rows, malformed = [], []
    for path in sorted(folder.glob("*.jpg")):
        try:
            labels = parse_utkface_name(path.name)
        except LabelError:
            malformed.append(path.name)
            continue
        rows.append(
            {
                "image_id": path.name,
                "path": str(path.resolve()),
                "age": labels.age,
                "gender": labels.gender,
                "race": labels.race,
            }
        )
    return pd.DataFrame(rows), malformed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-dir", help="a folder of crop_part1 chips (default: unpack ../shared)")
    parser.add_argument("--workers", type=int, default=None, help="local Dask workers (default: dask.workers)")
    parser.add_argument("--limit", type=int, default=None, help="align only the first N faces")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    parameters = project_parameters(
        ROOT / "conf", env="base", overrides={"dask.workers": args.workers} if args.workers else None
    )
    params, dask = parameters.align, parameters.dask
    with tempfile.TemporaryDirectory() as scratch:
        folder = chips_folder(args.image_dir, Path(scratch))
        if folder is None:
            print(f"skipped: {SHARED_TAR} is absent and no --image-dir was given")
            return 0
        faces, malformed = faces_table(folder)
        if args.limit:
            faces = faces.head(args.limit)
        print(f"files: {len(faces) + len(malformed)}, faces: {len(faces)}, malformed names: {malformed}")
        started = time.perf_counter()
        landmarks, failures = align_faces(
            faces, params.detection, params.crop, params.five_point, params.chunk_size, dask
        )
        wall = time.perf_counter() - started
    rate = len(landmarks) / len(faces)
    print(f"aligned: {len(landmarks)}, failures: {len(failures)} {failures['reason'].value_counts().to_dict()}")
    print(f"by stage: {landmarks['detection_stage'].value_counts().to_dict()}")
    print(f"more than one face: {int((landmarks['face_count'] > 1).sum())}")
    misses = failures.merge(faces, on=["image_id", "path"])
    if len(misses):
        print(
            "misses by race:",
            misses["race"].value_counts().sort_index().to_dict(),
            "by age<13:",
            int((misses["age"] < 13).sum()),
        )
    print(f"wall: {wall:.1f} s ({len(faces) / wall:.1f} images/s)")
    print(f"detection_rate={rate:.4f} (article: {ARTICLE_DETECTION_RATE:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

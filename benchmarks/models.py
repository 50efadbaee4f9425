"""Infer throughput for each published model beside bare onnxruntime / Keras calls on the same crops.

    python benchmarks/models.py [--images 512] [--batch-size 64] [--repeats 3] [--models dlib_age_v1 ...]

For each registry model (``dex_bias.models.registry``; yu4u's file must have been fetched with
``python -m dex_bias.models.fetch yu4u_wrn_16_8_v05``, else that model is skipped and said so):

1. ours: :func:`dex_bias.models.inference.predict_faces`, what each infer task runs, in this process: decode
   each image, cut every crop the model declares (dlib's 64 px age chip and 32 px gender chip; the
   padded 40 % box for the WideResNet) on a thread pool while the model runs, the declared
   preprocessing, the forward pass(es), expected age, the ``predictions`` table;
2. bare: the same network(s) called directly (``session.run`` for ONNX, ``model(x, training=False)``
   for Keras) on the same crops, already cut and preprocessed in memory, same batch size.

Both sides run each onnxruntime session on ``--threads`` threads (1 by default: what each Dask
worker of a run gives it, one thread per worker), so the decoding and cutting of the next batch
can overlap the network on another core, as it does across a run's workers.

Images: a seeded sample of UTKFace chips from ``../shared/data/utkface_crop_part1.tar`` where
present, else demo faces, aligned once beforehand (not timed). Sides alternate ``--repeats``
times and each keeps its best run. Prints each model's rates and ratio; the last line is
``ratio=<worst of ours/bare over the models>`` (target >= 0.9).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dex_bias.faces.align import align_table  # noqa: E402
from dex_bias.faces.detect import AlignSettings  # noqa: E402
from dex_bias.faces.views import iter_view_batches  # noqa: E402
from dex_bias.models.inference import join_faces_and_landmarks, predict_faces  # noqa: E402
from dex_bias.models.registry import published_models  # noqa: E402
from dex_bias.models.runtime import KerasNetwork, OnnxNetwork, load_estimator  # noqa: E402
from dex_bias.models.weights import WeightsFileError  # noqa: E402
from dex_bias.parameters import project_parameters  # noqa: E402
from dex_bias.utkface import face_row, parse_utkface_name  # noqa: E402
from infer import image_paths  # noqa: E402  (benchmarks/infer.py: the same seeded images)


def aligned_table(paths: list[Path]) -> pd.DataFrame:
    """faces joined with landmarks (5-point landmarks included) for ``paths``."""
    faces = pd.DataFrame([face_row(p, parse_utkface_name(p.name)) for p in paths])
    parameters = project_parameters(ROOT / "conf", env="base", overrides={"dask.progress": False})
    align = parameters.align
    landmarks, failures = align_table(
        faces,
        AlignSettings.from_parameters(align.detection, align.crop, align.five_point),
        parameters.dask,
        chunk_size=align.chunk_size,
    )
    table, _ = join_faces_and_landmarks(faces, landmarks)
    print(f"aligned: {len(table)} of {len(faces)} images ({len(failures)} without a face)")
    return table


def bare_call(estimator):
    """The network(s) alone: a function of the preprocessed input batches of every view."""
    networks = [estimator.age_network] + ([estimator.gender_network] if estimator.gender_network else [])

    def call(inputs: list[np.ndarray]) -> None:
        for network, tensor in zip(networks, inputs):
            if isinstance(network, OnnxNetwork):
                network.session.run(network.output_names, {network.input_name: tensor})
            elif isinstance(network, KerasNetwork):
                outputs = network.model(tensor, training=False)
                np.asarray(outputs[-1] if isinstance(outputs, (list, tuple)) else outputs)

    return call


def measure(
    name: str, table: pd.DataFrame, batch_size: int, repeats: int, workers: int, threads: int | None
) -> float | None:
    spec = published_models()[name]
    try:
        estimator = load_estimator(spec, root=ROOT, threads=threads)
    except WeightsFileError as error:
        print(f"{name}: skipped ({error})")
        return None
    views = [view.view for view in estimator.views]
    batches = [crops for _, crops in iter_view_batches(table, views, batch_size, workers=workers)]
    inputs = [[view.preprocess(crops[v], name) for v, view in enumerate(estimator.views)] for crops in batches]
    call = bare_call(estimator)
    predict_faces(estimator, table.head(batch_size), batch_size=batch_size, workers=workers, log_every=0)  # warm
    call(inputs[0])
    ours_best = bare_best = float("inf")
    for repeat in range(1, repeats + 1):
        started = time.perf_counter()
        predictions, failures = predict_faces(estimator, table, batch_size=batch_size, workers=workers, log_every=0)
        ours = time.perf_counter() - started
        started = time.perf_counter()
        for batch in inputs:
            call(batch)
        bare = time.perf_counter() - started
        ours_best, bare_best = min(ours_best, ours), min(bare_best, bare)
        print(
            f"{name} repeat {repeat}: ours {len(table) / ours:7.1f} predictions/s ({ours:.2f} s), "
            f"bare {len(table) / bare:7.1f} predictions/s ({bare:.2f} s)"
        )
    assert len(predictions) == len(table) and failures.empty, "every benchmark image must be predicted"
    ratio = bare_best / ours_best
    print(
        f"{name}: {', '.join(f'{v.size} px {v.crop.describe()}' for v in estimator.views)}, batch {batch_size}: "
        f"ours {len(table) / ours_best:.1f}/s, bare {len(table) / bare_best:.1f}/s, ours/bare {ratio:.3f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="decode threads (infer.crop_workers)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime threads per session: 1, as on each Dask worker of a run (one thread per "
        "worker by default); 0: onnxruntime's own choice (every core)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="*", default=sorted(published_models()))
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory(prefix="dex_bias_models_bench_") as tempdir:
        table = aligned_table(image_paths(args.images, Path(tempdir), args.seed))
        ratios = {
            name: measure(name, table, args.batch_size, args.repeats, args.workers, args.threads or None)
            for name in args.models
        }
    measured = {name: ratio for name, ratio in ratios.items() if ratio is not None}
    if not measured:
        sys.exit("no model could be measured")
    worst = min(measured, key=measured.get)
    print(f"worst: {worst} ({measured[worst]:.3f}); target >= 0.9")
    print(f"ratio={measured[worst]:.3f}")


if __name__ == "__main__":
    main()

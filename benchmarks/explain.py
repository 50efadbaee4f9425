"""Speed of the explain pipeline's LIME against lime_image, on the same images, model and regions.

    python benchmarks/explain.py [--images 12] [--num-samples 1000] [--article-images 6] [--model FILE]

Sides (each explains the expected age over the same 14-region maps, num_samples perturbations):

1. ours: ``dex_bias.explain.lime_regions.explain_images`` (vectorised perturbations, model batches
   filled across images, the compiled age function) at the best batch size found in step 0;
2. the article's set-up: ``lime_image.LimeImageExplainer().explain_instance`` with its default
   ``batch_size=10`` and a ``classifier_fn`` that calls ``model.predict`` (the article's way);
3. the best lime_image can do: the same, with a ``classifier_fn`` that calls the compiled model
   directly and ``batch_size=num_samples``;
0. the floor: the bare forward passes (the compiled age function on ready uint8 batches) of as
   many images as ours perturbs, at the best of several batch sizes.

Model: the latest demo ``age_model`` under data/06_models when a ``kedro run`` left one, else a
compact model trained here for one epoch on rendered demo faces. Images: demo faces rendered at
the model's input size with their template landmarks (no download, no UTKFace image).
Measurements alternate between sides and keep each side's best of ``--repeats`` (the machine may
be shared). The last line is ``ratio=<our images/s over the article's set-up's>``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dex_bias.demo.generate import plan_demo, render_demo_face  # noqa: E402
from dex_bias.explain.lime_regions import compact_segments, explain_images, image_seed  # noqa: E402
from dex_bias.explain.regions import region_map  # noqa: E402
from dex_bias.models import AGE_OUTPUT, build_model, expected_age, make_age_function, spec_for  # noqa: E402
from dex_bias.models.spec import output_index  # noqa: E402
from dex_bias.parameters import project_parameters  # noqa: E402

#: The project's parameters (conf/base): the demo faces drawn and the LIME set-up measured.
PARAMETERS = project_parameters(ROOT / "conf", env="base")


def demo_settings(**changes):
    return replace(PARAMETERS.ingest.demo, **changes)


def load_or_train_model(model_file: str | None = None):
    """``model_file``, else the latest demo age_model, else a compact model trained for one epoch here."""
    versions = (
        [Path(model_file)]
        if model_file
        else sorted((ROOT / "data" / "06_models" / "age_model.keras").glob("*/age_model.keras"))
    )
    if versions:
        from dex_bias.models.weights import load_keras_model

        print(f"model: {versions[-1]}")
        return load_keras_model(versions[-1])
    import keras

    model = build_model("compact")
    spec = spec_for(model)
    faces = plan_demo(demo_settings(count=384, seed=11, size=128))
    images, ages = [], []
    for face, rng in faces:
        image, _ = render_demo_face(face, rng, 128)
        images.append(np.asarray(keras.ops.image.resize(image[None], (spec.input_size, spec.input_size)))[0])
        ages.append(min(face.age, 100))
    x = spec.preprocess(np.clip(np.stack(images), 0, 255).astype(np.uint8))
    age_targets = keras.utils.to_categorical(ages, 101)
    age_at = output_index(model, AGE_OUTPUT)
    targets = [None] * len(model.outputs)
    for i in range(len(model.outputs)):
        targets[i] = (
            age_targets
            if i == age_at
            else keras.utils.to_categorical([f.gender for f, _ in faces], model.outputs[i].shape[-1])
        )
    model.compile(optimizer="adam", loss=["categorical_crossentropy"] * len(model.outputs))
    model.fit(x, targets if len(targets) > 1 else targets[0], epochs=1, batch_size=64, verbose=0)
    print("model: compact, trained here for one epoch on 384 rendered demo faces")
    return model


def bench_images(count: int, size: int):
    """(crops, region maps) of rendered demo faces at the model's input size."""
    crops, maps = [], []
    for face, rng in plan_demo(demo_settings(count=count, seed=29, size=size)):
        image, points = render_demo_face(face, rng, size)
        crops.append(image)
        maps.append(compact_segments(region_map(points, size))[1])
    return crops, maps


CPU_SECONDS: dict[int, float] = {}


def _batched_calls(function, probe: np.ndarray, batch: int) -> list:
    return [function(probe[i : i + batch]) for i in range(0, len(probe), batch)]


def timed(fn, *args, **kwargs):
    """Wall-clock seconds and the result; the process's CPU seconds (all threads) go to CPU_SECONDS
    under the same call number, a steadier measure of work when other jobs share the cores."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    wall = time.perf_counter() - start
    CPU_SECONDS[len(CPU_SECONDS)] = time.process_time() - cpu
    timed.last_cpu = CPU_SECONDS[len(CPU_SECONDS) - 1]
    return wall, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="images explained by ours and best lime_image")
    parser.add_argument("--article-images", type=int, default=6, help="images for the slow article set-up")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", help="a .keras age model (default: the latest demo age_model here)")
    args = parser.parse_args()

    from lime import lime_image

    model = load_or_train_model(args.model)
    spec = spec_for(model)
    size = spec.input_size
    age_function = make_age_function(model)
    age_at = output_index(model, AGE_OUTPUT)
    print(
        f"{model.name}: {model.count_params():,} parameters, {size} px, {args.num_samples} samples, "
        f"{os.cpu_count()} CPUs"
    )
    crops, maps = bench_images(args.images, size)
    n_perturbed = args.images * args.num_samples

    # 0. the floor: bare forward passes, best batch size
    rng = np.random.default_rng(0)
    probe = rng.integers(0, 256, (1000, size, size, 3), dtype=np.uint8)
    per_image = {}
    for batch in (50, 100, 200, 500, 1000):
        age_function(probe[:batch])
        seconds = min(timed(_batched_calls, age_function, probe, batch)[0] for _ in range(2))
        per_image[batch] = seconds / 1000
    best_batch = min(per_image, key=per_image.get)
    print(
        "bare forward, ms per image by batch size: "
        + ", ".join(f"{b}: {t * 1000:.3f}" for b, t in per_image.items())
        + f"  -> best {best_batch}"
    )

    settings = replace(PARAMETERS.explain.lime, num_samples=args.num_samples, batch_size=best_batch)
    items = [(f"face{i}", crop, labels, image_seed(0, f"face{i}")) for i, (crop, labels) in enumerate(zip(crops, maps))]

    def bare():
        for start in range(0, n_perturbed, best_batch):
            age_function(probe[: min(best_batch, n_perturbed - start)])

    def ours():
        return list(explain_images(items, age_function, settings))

    def lime_side(classifier_fn, batch_size, count):
        explainer = lime_image.LimeImageExplainer(random_state=0)
        for crop, labels in zip(crops[:count], maps[:count]):
            explainer.explain_instance(
                crop,
                classifier_fn,
                labels=(0,),
                top_labels=None,
                hide_color=None,
                num_samples=args.num_samples,
                batch_size=batch_size,
                segmentation_fn=lambda _, labels=labels: labels,
                random_seed=0,
            )

    def article_classifier(images):
        outputs = model.predict(spec.preprocess(images.astype(np.uint8)), verbose=0)
        probs = outputs[age_at] if isinstance(outputs, (list, tuple)) else outputs
        return expected_age(probs)[:, None]

    def direct_classifier(images):
        return age_function(images.astype(np.uint8))[:, None]

    import lime.lime_image as lime_image_module

    lime_image_module.tqdm = lambda rows, **_: rows  # no progress bar per image: keep the console readable

    ours_s, bare_s, best_lime_s = [], [], []
    ours_cpu, bare_cpu, best_lime_cpu = [], [], []
    for _ in range(args.repeats):
        bare_s.append(timed(bare)[0])
        bare_cpu.append(timed.last_cpu)
        ours_s.append(timed(ours)[0])
        ours_cpu.append(timed.last_cpu)
        best_lime_s.append(timed(lambda: lime_side(direct_classifier, args.num_samples, args.images))[0])
        best_lime_cpu.append(timed.last_cpu)
    article_s = timed(lambda: lime_side(article_classifier, 10, args.article_images))[0]
    article_cpu = timed.last_cpu
    load = os.getloadavg()[0]

    ours_rate = args.images / min(ours_s)
    article_rate = args.article_images / article_s
    best_lime_rate = args.images / min(best_lime_s)
    print(
        f"ours:                      {min(ours_s) / args.images:.3f} s/image  ({ours_rate:.2f} images/s; "
        f"runs {', '.join(f'{s:.1f}' for s in ours_s)} s for {args.images})"
    )
    print(
        f"lime_image, article set-up: {1 / article_rate:.3f} s/image  ({article_rate:.2f} images/s; "
        f"model.predict, batch_size 10, {args.article_images} images)"
    )
    print(
        f"lime_image, best:          {1 / best_lime_rate:.3f} s/image  ({best_lime_rate:.2f} images/s; "
        f"direct compiled call, batch_size {args.num_samples})"
    )
    print(
        f"bare forward passes:       {min(bare_s) / args.images:.3f} s per {args.num_samples} images "
        f"(batch {best_batch})"
    )
    print(f"speed-up vs article set-up: {ours_rate / article_rate:.1f}x (target >= 10)")
    print(f"speed-up vs best lime_image: {ours_rate / best_lime_rate:.2f}x")
    print(f"ours / bare forward:        {min(ours_s) / min(bare_s):.3f} (target <= 1.25)")
    cpu_per_image = {
        "ours": min(ours_cpu) / args.images,
        "article": article_cpu / args.article_images,
        "best lime_image": min(best_lime_cpu) / args.images,
        "bare": min(bare_cpu) / args.images,
    }
    print("CPU seconds per image (all threads): " + ", ".join(f"{k} {v:.3f}" for k, v in cpu_per_image.items()))
    print(
        f"in CPU time: {cpu_per_image['article'] / cpu_per_image['ours']:.1f}x vs article, "
        f"{cpu_per_image['best lime_image'] / cpu_per_image['ours']:.2f}x vs best lime_image, "
        f"ours/bare {cpu_per_image['ours'] / cpu_per_image['bare']:.3f}  (1-min load average {load:.1f} "
        f"on {os.cpu_count()} CPUs: wall-clock figures are noisy when it exceeds the CPU count)"
    )
    print(f"ratio={ours_rate / article_rate:.3f}")


if __name__ == "__main__":
    main()

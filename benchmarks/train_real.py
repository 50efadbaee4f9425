"""Train the DEX model on real UTKFace chips and report its test-split MAE, overall and by race.

    python benchmarks/train_real.py [--workdir /tmp/dex_bias_train_real] [--epochs 20] [--backbone compact]
                                    [--param train.batch_size=64 ...]

Unpacks ``crop_part1`` from ``../shared/data/utkface_crop_part1.tar`` into the work folder (once),
lays out a copy of this project there (conf and a snapshot of ``src/dex_bias``), and runs
``kedro run --pipelines=ingest,align,train,infer`` on it: ingest's seeded stratified split
(75 % train / 25 % test), dlib alignment, training on the train split on this machine's CPU
cores, then inference on the test split only. Prints the test-split MAE of the expected age,
overall and by race and by gender, beside the MAE of always predicting the training-split mean
age, the training time and epochs, and the wall time of each stage. Nothing derived from the
images leaves the work folder (never commit it). The last line is ``mae=<test-split MAE>``.

Anchors: the second study's re-trained VGG-Face reached MAE 7.8-8.4 on in-the-wild UTKFace;
the best published results on full UTKFace are about 4.4.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_TAR = ROOT.parent / "shared" / "data" / "utkface_crop_part1.tar"
sys.path.insert(0, str(ROOT / "src"))
from dex_bias import DATA_LAYERS  # noqa: E402

RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}


def latest(project: Path, relative: str) -> Path:
    versions = sorted((project / relative).iterdir())
    return versions[-1] / Path(relative).name


def lay_out_project(workdir: Path) -> Path:
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(ROOT / "conf", project / "conf")
    (project / "conf" / "local").mkdir(exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, project / name)
    # A snapshot of the package: edits in the repository during a long run do not leak into it.
    shutil.copytree(
        ROOT / "src" / "dex_bias", project / "src" / "dex_bias", ignore=shutil.ignore_patterns("__pycache__")
    )
    for layer in DATA_LAYERS:
        (project / "data" / layer).mkdir(parents=True, exist_ok=True)
    return project


def nest(dotted: dict[str, object]) -> dict:
    nested: dict = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dex_bias_train_real"))
    parser.add_argument("--backbone", default="compact")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--param", action="append", default=[], help="extra dotted parameter, e.g. train.batch_size=64 (YAML value)"
    )
    args = parser.parse_args()
    if not SHARED_TAR.exists():
        sys.exit(f"{SHARED_TAR} is absent: this benchmark needs the real UTKFace chips")

    args.workdir.mkdir(parents=True, exist_ok=True)
    images = args.workdir / "crop_part1"
    if not images.exists():
        with tarfile.open(SHARED_TAR) as tar:
            tar.extractall(args.workdir, filter="data")
    project = lay_out_project(args.workdir)
    params: dict[str, object] = {
        "ingest.image_dir": str(images),
        "train.model.backbone": args.backbone,
        "train.epochs": args.epochs,
        "train.batch_size": 64,
        "train.patience": 5,
        "train.validation_fraction": 0.1,
        "train.crop_workers": os.cpu_count() or 2,
        "infer.crop_workers": os.cpu_count() or 2,
        "dask.progress": False,
    }
    for item in args.param:
        key, _, value = item.partition("=")
        params[key] = yaml.safe_load(value)
    with open(project / "conf" / "local" / "parameters_train_real.yml", "w") as handle:
        yaml.safe_dump(nest(params), handle)

    log_path = args.workdir / "kedro_run.log"
    environment = dict(
        os.environ, KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", COLUMNS="200"
    )
    print(f"running ingest, align, train, infer in {project} (log: {log_path})", flush=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "kedro", "run", "--pipelines=ingest,align,train,infer"],
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"kedro run failed ({done.returncode}); see {log_path}")

    faces = pd.read_parquet(latest(project, "data/02_intermediate/faces.parquet"))
    predictions = pd.read_parquet(latest(project, "data/07_model_output/predictions.parquet"))
    failures = pd.read_csv(latest(project, "data/07_model_output/inference_failures.csv"))
    with zipfile.ZipFile(latest(project, "data/06_models/age_model.keras")) as archive:
        card = json.loads(archive.read("dex_bias.json"))
    training = card.get("training", {})
    train_mean = faces.loc[faces["split"] == "train", "age"].mean()
    errors = (predictions["predicted_age"] - predictions["age"]).abs()
    baseline = (train_mean - predictions["age"]).abs()

    print(
        f"faces: {len(faces)} ({int((faces['split'] == 'train').sum())} train, "
        f"{int((faces['split'] == 'test').sum())} test); test predicted {len(predictions)}, "
        f"failed {len(failures)} ({failures['reason'].value_counts().to_dict() if len(failures) else {}})"
    )
    print(
        f"model: {card.get('backbone')}, trained on {card.get('n_training_faces')} faces "
        f"({training.get('n_train')} fit + {training.get('n_validation')} validation), "
        f"{training.get('epochs_run')} epochs (best {training.get('best_epoch')}, "
        f"validation MAE {training.get('best_val_age_mae', float('nan')):.2f})"
    )
    print(
        f"training time: {training.get('training_seconds')} s on {os.cpu_count()} CPU cores; "
        f"whole run (ingest+align+train+infer): {wall:.0f} s"
    )
    print(
        f"test-split MAE: {errors.mean():.2f} years (always the training mean {train_mean:.1f}: "
        f"{baseline.mean():.2f}); gender accuracy "
        f"{((predictions['prob_female'] > 0.5).astype(int) == predictions['gender']).mean():.3f}"
    )
    by_race = pd.DataFrame({"race": predictions["race"].map(RACES), "error": errors, "baseline": baseline})
    table = by_race.groupby("race").agg(n=("error", "size"), mae=("error", "mean"), baseline_mae=("baseline", "mean"))
    print("by race:\n" + table.round(2).to_string())
    by_gender = pd.DataFrame({"gender": predictions["gender"].map({0: "male", 1: "female"}), "error": errors})
    print("by gender:\n" + by_gender.groupby("gender")["error"].agg(["size", "mean"]).round(2).to_string())
    print(f"mae={errors.mean():.3f}")


if __name__ == "__main__":
    main()

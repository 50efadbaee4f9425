"""The seeded demo set: labels, age cues with a planted bias, files and their manifest.

Each face ``i`` draws everything (labels, look, pose, noise) from its own generator
``numpy.random.default_rng([seed, i])``, so face ``i`` is the same whatever the count, and the
same seed gives byte-identical files.

**The planted bias.** A face's age cues (``youth``, ``ageing``, ``greying``, ``wrinkles``;
see :mod:`dex_bias.demo.template`) are functions of an age. For every race but
``planted_race`` that age is the true one. For ``planted_race`` each cue is mixed:
``cue = (1 - s) * cue(true age) + s * cue(noise age)``, where ``s = planted_strength`` and the
noise age is drawn, independently of the true age, from the same age distribution. The cues
then carry only ``1 - s`` of their age signal, and the rest is age-unrelated noise, so a model
trained on the set regresses that group's predictions towards the mean age: older faces of
that group look younger and children look older. ``planted_strength = 0`` plants no bias.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from dex_bias.demo.render import HAIR_TONES, SKIN_TONES, FaceLook, render_face
from dex_bias.schema import settings_dataclass
from dex_bias.utkface import RACE_NAMES

logger = logging.getLogger(__name__)

MANIFEST_NAME = "demo_manifest.json"
#: Bumped whenever a change to the drawing would change the files for the same settings.
GENERATOR_VERSION = 1
_STAMP_ORIGIN = datetime(2017, 1, 1)


class DemoFolderError(RuntimeError):
    """The demo folder holds something other than the demo these settings would make."""


@settings_dataclass
class DemoSettings:
    """``ingest.demo``: what decides the demo set (all of it but ``output_dir`` goes into the manifest).

    ``output_dir``: the folder ingest makes the demo in (when it is ``ingest.image_dir``);
    ``count`` faces of ``size`` x ``size`` px, JPEG quality ``jpeg_quality``; ages uniform in
    ``min_age``-17 with probability ``minor_share``, else uniform in 18-``max_age``; gender
    and race uniform; age cues of ``planted_race`` weakened by ``planted_strength`` in [0, 1].
    """

    output_dir: str
    count: int
    seed: int
    planted_race: int
    planted_strength: float
    size: int
    jpeg_quality: int
    minor_share: float
    min_age: int
    max_age: int

    def __post_init__(self):
        if self.count < 1:
            raise ValueError(f"demo count must be at least 1, got {self.count}")
        if self.planted_race not in RACE_NAMES:
            raise ValueError(f"planted_race must be a UTKFace race code 0-4, got {self.planted_race}")
        if not 0.0 <= self.planted_strength <= 1.0:
            raise ValueError(f"planted_strength must lie in [0, 1], got {self.planted_strength}")
        if self.size < 64:
            raise ValueError(f"demo faces need at least 64 px, got size={self.size}")
        if not 1 <= self.min_age <= 17 < self.max_age <= 116:
            raise ValueError(f"need 1 <= min_age <= 17 < max_age <= 116, got {self.min_age}, {self.max_age}")

    def recorded(self) -> dict:
        """The settings that decide the files (the manifest's): all but where they are written."""
        return {key: value for key, value in asdict(self).items() if key != "output_dir"}


def age_cues(age: float) -> dict[str, float]:
    """The four age cues (each in [0, 1]) a face of ``age`` years shows at full strength.

    ``youth`` falls from 1 at age 1 to 0 at 18 (baby-face proportions); ``ageing`` (jaw sag,
    droop) rises from age 20 to 80; ``greying`` from 38 to 78; ``wrinkles`` from 25 to 75.
    """
    return {
        "youth": float(np.clip((18.0 - age) / 17.0, 0.0, 1.0) ** 0.7),
        "ageing": float(np.clip((age - 20.0) / 60.0, 0.0, 1.0)),
        "greying": float(np.clip((age - 38.0) / 40.0, 0.0, 1.0)),
        "wrinkles": float(np.clip((age - 25.0) / 50.0, 0.0, 1.0)),
    }


def _draw_age(rng: np.random.Generator, settings: DemoSettings) -> int:
    if rng.random() < settings.minor_share:
        return int(rng.integers(settings.min_age, 18))
    return int(rng.integers(18, settings.max_age + 1))


def _stamp(rng: np.random.Generator) -> str:
    """A UTKFace-like date-time stamp (17 digits, milliseconds) within 2017."""
    moment = _STAMP_ORIGIN + timedelta(milliseconds=int(rng.integers(0, 365 * 24 * 3600 * 1000)))
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


@dataclass(frozen=True)
class DemoFace:
    """One planned face: its labels, file name, the age its cues show, and how it looks."""

    index: int
    age: int
    gender: int
    race: int
    stamp: str
    cue_age: float  # the age whose cues were mixed in (the true age outside the planted group)
    planted: bool
    look: FaceLook

    @property
    def file_name(self) -> str:
        return f"{self.age}_{self.gender}_{self.race}_{self.stamp}.jpg"


def plan_face(settings: DemoSettings, index: int) -> tuple[DemoFace, np.random.Generator]:
    """Draw face ``index``'s labels and look; returns it with its generator (for the noise)."""
    rng = np.random.default_rng([settings.seed, index])
    age, gender, race = _draw_age(rng, settings), int(rng.integers(0, 2)), int(rng.integers(0, 5))
    stamp = _stamp(rng)
    noise_age = _draw_age(rng, settings)
    planted = race == settings.planted_race and settings.planted_strength > 0
    true_cues, noise_cues = age_cues(age), age_cues(noise_age)
    weight = settings.planted_strength if planted else 0.0
    cues = {name: (1 - weight) * true_cues[name] + weight * noise_cues[name] for name in true_cues}

    skin = tuple(float(c) * rng.uniform(0.9, 1.08) + rng.normal(0, 4) for c in SKIN_TONES[race])
    tones = HAIR_TONES[race]
    hair = tuple(float(c) for c in tones[int(rng.integers(0, len(tones)))])
    long_hair = bool(rng.random() < (0.85 if gender == 1 else 0.1))
    skin_luminance = 0.3 * skin[0] + 0.59 * skin[1] + 0.11 * skin[2]
    # Backgrounds keep away from the skin's brightness so the face outline stays visible.
    base = rng.uniform(30, 90) if skin_luminance > 140 else rng.uniform(150, 230)
    background = tuple(tuple(float(np.clip(base + rng.normal(0, 25), 0, 255)) for _ in range(3)) for _ in range(2))
    iris = (60, 95, 140) if race == 0 and rng.random() < 0.35 else (70, 45, 30)
    size = settings.size
    look = FaceLook(
        youth=cues["youth"],
        ageing=cues["ageing"],
        greying=cues["greying"],
        wrinkles=cues["wrinkles"],
        skin=skin,
        hair=hair,
        long_hair=long_hair,
        background=background,
        light=float(rng.uniform(-1, 1)),
        roll=float(np.clip(rng.normal(0, 4), -9, 9)),
        yaw=float(np.clip(rng.normal(0, 6), -14, 14)),
        pitch=float(np.clip(rng.normal(0, 3), -7, 7)),
        scale=size / 200 * float(rng.uniform(44, 52)),
        centre=(size / 2 + float(rng.normal(0, 3)), size * 0.45 + float(rng.normal(0, 3))),
        iris=iris,
    )
    cue_age = (1 - weight) * age + weight * noise_age
    return DemoFace(index, age, gender, race, stamp, cue_age, planted, look), rng


def plan_demo(settings: DemoSettings) -> list[tuple[DemoFace, np.random.Generator]]:
    """Plan every face; stamps that collide are moved on by a millisecond (names stay unique)."""
    planned, seen = [], set()
    for index in range(settings.count):
        face, rng = plan_face(settings, index)
        stamp = face.stamp
        while stamp in seen:
            stamp = str(int(stamp) + 1)
        seen.add(stamp)
        if stamp != face.stamp:
            face = DemoFace(face.index, face.age, face.gender, face.race, stamp, face.cue_age, face.planted, face.look)
        planned.append((face, rng))
    return planned


def demo_labels(settings: DemoSettings) -> pd.DataFrame:
    """The planned faces as a table: ``image_id``, ``age``, ``gender``, ``race``, ``planted``,
    ``cue_age`` (no drawing; cheap)."""
    rows = [
        {
            "image_id": face.file_name,
            "age": face.age,
            "gender": face.gender,
            "race": face.race,
            "planted": face.planted,
            "cue_age": face.cue_age,
        }
        for face, _ in plan_demo(settings)
    ]
    return pd.DataFrame(rows)


def render_demo_face(face: DemoFace, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The (size, size, 3) uint8 RGB image of a planned face and its 68 template landmarks (px)."""
    return render_face(face.look, rng, size)


def manifest_for(settings: DemoSettings, names: list[str]) -> dict:
    return {
        "generator": "dex_bias.demo",
        "generator_version": GENERATOR_VERSION,
        "settings": settings.recorded(),
        "count": settings.count,
        "seed": settings.seed,
        "files": sorted(names),
    }


def generate_demo_faces(output_dir: str | os.PathLike, settings: DemoSettings) -> dict:
    """Write the demo set into ``output_dir`` (which must not exist or be empty); returns the
    manifest, also written there as ``demo_manifest.json``.

    The files are made in a sibling folder that is renamed into place when complete, so an
    interrupted run never leaves a half-made demo that looks whole.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise DemoFolderError(f"{output_dir} is not empty; the demo generator never writes over files")
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = output_dir.with_name(f".{output_dir.name}.partial-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()

    def write(planned: tuple[DemoFace, np.random.Generator]) -> str:
        face, rng = planned
        pixels, _ = render_demo_face(face, rng, settings.size)
        Image.fromarray(pixels, "RGB").save(staging / face.file_name, format="JPEG", quality=settings.jpeg_quality)
        return face.file_name

    # Each face owns its generator, so threads (Pillow and NumPy release the GIL) give the
    # same bytes as a sequential loop.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        names = list(pool.map(write, plan_demo(settings)))
    manifest = manifest_for(settings, names)
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    if output_dir.exists():
        output_dir.rmdir()  # empty (checked above); a directory cannot be renamed over a full one
    os.replace(staging, output_dir)
    logger.info(
        "Made %d demo faces in %s (seed %d, planted race %d at strength %.2f)",
        settings.count,
        output_dir,
        settings.seed,
        settings.planted_race,
        settings.planted_strength,
    )
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The demo manifest in ``folder``, or ``None`` when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DemoFolderError(f"{path} cannot be read ({exc}); delete {Path(folder)} to make the demo again") from None


def ensure_demo_faces(output_dir: str | os.PathLike, settings: DemoSettings) -> str:
    """Make the demo set in ``output_dir`` unless the same demo is already there.

    Returns ``"created"`` or ``"reused"``. Never overwrites: a folder holding another demo
    (different settings), an incomplete demo, or files without a manifest raises
    :class:`DemoFolderError` saying what to do.
    """
    output_dir = Path(output_dir)
    if not output_dir.exists() or not any(output_dir.iterdir()):
        generate_demo_faces(output_dir, settings)
        return "created"
    manifest = read_manifest(output_dir)
    if manifest is None:
        raise DemoFolderError(
            f"{output_dir} holds files but no {MANIFEST_NAME}, so it was not made by the demo "
            f"generator; it is left untouched. Point ingest.image_dir at it to audit those images, "
            f"or delete it (or choose another ingest.demo.output_dir) to make the demo faces."
        )
    wanted = manifest_for(settings, [])
    found_settings = manifest.get("settings", {})
    if manifest.get("generator_version") != GENERATOR_VERSION or found_settings != wanted["settings"]:
        differences = {
            key: (found_settings.get(key), value)
            for key, value in wanted["settings"].items()
            if found_settings.get(key) != value
        }
        if manifest.get("generator_version") != GENERATOR_VERSION:
            differences["generator_version"] = (manifest.get("generator_version"), GENERATOR_VERSION)
        listed = ", ".join(
            f"{key}: folder has {old!r}, parameters ask {new!r}" for key, (old, new) in differences.items()
        )
        raise DemoFolderError(
            f"{output_dir} holds a demo made with other settings ({listed}). It is never overwritten: "
            f"delete the folder to make the demo again, or set ingest.demo.output_dir (and "
            f"ingest.image_dir) to a new folder."
        )
    missing = [name for name in manifest.get("files", []) if not (output_dir / name).exists()]
    if missing:
        raise DemoFolderError(
            f"{output_dir} is an incomplete demo: {len(missing)} of its {len(manifest['files'])} "
            f"files are missing (first: {missing[0]}). Delete the folder to make the demo again."
        )
    return "reused"

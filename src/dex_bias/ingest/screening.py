"""Find UTKFace-named images, screen them (labels, duplicates, decoding) and split them.

Plain functions on paths and DataFrames (no Kedro), used by the ingest nodes. Every ``.jpg``
file found ends either in the faces table or in the quarantine table with a reason, so
``files found = faces + quarantined`` always holds (:func:`screen_image_folder` checks it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from dex_bias.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, ImageDecodeError, probe_image
from dex_bias.utkface import DEFAULT_AGE_BANDS, LabelError, age_bands, parse_utkface_name

QUARANTINE_COLUMNS = ["path", "image_id", "reason", "detail"]
FACE_COLUMNS = [
    "image_id",
    "path",
    "age",
    "gender",
    "race",
    "age_band",
    "split",
    "width",
    "height",
    "source_mode",
    "source_format",
]
#: Quarantine reason for a second file with an image id (file name) already taken.
DUPLICATE_REASON = "duplicate_id"


class ImageFolderError(RuntimeError):
    """The image folder is missing or holds no images: nothing to audit."""


def scan_image_folder(
    folder: str | os.PathLike, parameter: str = "ingest.image_dir"
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Every file under ``folder`` (recursively) whose name ends in ``.jpg`` (any case), which
    covers UTKFace chips (``*.jpg.chip.jpg``) and in-the-wild images (``*.jpg``), and a count of
    the other files by extension (lower case, ``(none)`` for a name without one).

    Returns ``(files, skipped)``: ``files`` has ``path`` (absolute, sorted) and ``image_id`` (the
    file name); ``skipped`` maps each other extension to its number of files (sorted), so a face
    saved as ``.png`` or ``.jpg.chip.jpeg`` is counted, not lost without a word. Hidden files and
    folders are not scanned (the demo generator stages its files in one). Raises
    :class:`ImageFolderError` naming the folder and ``parameter`` when the folder is missing, not a
    folder, or holds no ``.jpg`` file (naming what it holds instead).
    """
    root = Path(folder).expanduser().resolve()
    if not root.exists():
        raise ImageFolderError(
            f"The image folder {root} does not exist. Set the parameter {parameter} to a folder of "
            f'UTKFace images, e.g. kedro run --params "{parameter}=/path/to/UTKFace".'
        )
    if not root.is_dir():
        raise ImageFolderError(
            f"{root} (parameter {parameter}) is a file, not a folder of images. Point {parameter} at its folder."
        )
    paths, skipped = [], Counter()
    for current, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            if name.lower().endswith(".jpg"):
                paths.append(os.path.join(current, name))
            else:
                skipped[os.path.splitext(name)[1].lower() or "(none)"] += 1
    if not paths:
        held = f" (it holds {describe_skipped(skipped)})" if skipped else ""
        raise ImageFolderError(
            f"The image folder {root} (parameter {parameter}) holds no .jpg files{held}. UTKFace names "
            f"them [age]_[gender]_[race]_[date&time].jpg or .jpg.chip.jpg. Put the images there (faces "
            f"saved in another format: convert them to JPEG and name them .jpg) or point {parameter} at "
            f"the folder that holds them."
        )
    paths.sort()
    files = pd.DataFrame({"path": paths, "image_id": [os.path.basename(p) for p in paths]})
    return files, dict(sorted(skipped.items()))


def find_image_files(folder: str | os.PathLike, parameter: str = "ingest.image_dir") -> pd.DataFrame:
    """The ``.jpg`` files of :func:`scan_image_folder` (``path``, ``image_id``), without the count
    of other files."""
    return scan_image_folder(folder, parameter)[0]


def describe_skipped(skipped: dict[str, int]) -> str:
    """``"3 .png, 1 .jpeg"``: files not read, by extension."""
    return ", ".join(f"{count} {extension}" for extension, count in skipped.items())


def parse_labels(files: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Code the labels of each file name; returns (labelled files with ``age``, ``gender``,
    ``race``, quarantine rows for names that cannot be parsed or whose labels are out of range)."""
    labelled, rejected = [], []
    for path, image_id in zip(files["path"], files["image_id"]):
        try:
            labels = parse_utkface_name(image_id)
        except LabelError as exc:
            rejected.append({"path": path, "image_id": image_id, "reason": exc.reason, "detail": exc.detail})
            continue
        labelled.append(
            {"path": path, "image_id": image_id, "age": labels.age, "gender": labels.gender, "race": labels.race}
        )
    columns = ["path", "image_id", "age", "gender", "race"]
    return pd.DataFrame(labelled, columns=columns), pd.DataFrame(rejected, columns=QUARANTINE_COLUMNS)


def probe_images(
    files: pd.DataFrame,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every file fully (threads: Pillow releases the GIL while decoding); returns
    (decodable files with ``width``, ``height``, ``source_mode``, ``source_format``, quarantine
    rows with the :class:`~dex_bias.imaging.ImageDecodeError` reason)."""

    def probe(path: str):
        try:
            return probe_image(path, min_side=min_side, max_pixels=max_pixels)
        except ImageDecodeError as exc:
            return exc

    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(probe, files["path"], chunksize=64))
    good = np.array([not isinstance(result, ImageDecodeError) for result in results], dtype=bool)
    decodable = files.loc[good].copy()
    infos = [result for result in results if not isinstance(result, ImageDecodeError)]
    decodable["width"] = [info.width for info in infos]
    decodable["height"] = [info.height for info in infos]
    decodable["source_mode"] = [info.source_mode for info in infos]
    decodable["source_format"] = [info.source_format for info in infos]
    failures = [result for result in results if isinstance(result, ImageDecodeError)]
    rejected = pd.DataFrame(
        {
            "path": files.loc[~good, "path"].to_list(),
            "image_id": files.loc[~good, "image_id"].to_list(),
            "reason": [exc.reason for exc in failures],
            "detail": [str(exc) for exc in failures],
        },
        columns=QUARANTINE_COLUMNS,
    )
    return decodable.reset_index(drop=True), rejected


def drop_duplicate_ids(files: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first file of each ``image_id`` by sorted path; quarantine the others, naming
    the file kept (ids are file names, so two folders holding one name would collide)."""
    ordered = files.sort_values("path", kind="stable")
    repeated = ordered.duplicated("image_id", keep="first")
    kept_path = ordered.drop_duplicates("image_id").set_index("image_id")["path"]
    duplicates = ordered.loc[repeated]
    rejected = pd.DataFrame(
        {
            "path": duplicates["path"].to_list(),
            "image_id": duplicates["image_id"].to_list(),
            "reason": DUPLICATE_REASON,
            "detail": [
                f"the id {image_id!r} is already taken by {kept_path[image_id]} (the first by sorted path); "
                f"rename or remove one of the two"
                for image_id in duplicates["image_id"]
            ],
        },
        columns=QUARANTINE_COLUMNS,
    )
    return ordered.loc[~repeated].reset_index(drop=True), rejected


def screen_image_folder(
    folder: str | os.PathLike,
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Scan ``folder`` and screen every ``.jpg``: labels (:func:`parse_labels`), decoding
    (:func:`probe_images`), duplicate ids (:func:`drop_duplicate_ids`).

    Returns ``(screened, quarantine, skipped)``: the decodable, well-labelled files with unique
    ids; one quarantine row per other ``.jpg`` with its reason (sorted by path); and the files
    not read, counted by extension (:func:`scan_image_folder`). Raises ``AssertionError`` if a
    file was lost (found ≠ screened + quarantined), which would be a bug here.
    """
    files, skipped = scan_image_folder(folder)
    labelled, bad_names = parse_labels(files)
    decodable, undecodable = probe_images(labelled, min_side=min_side, max_pixels=max_pixels, workers=workers)
    screened, duplicates = drop_duplicate_ids(decodable)
    quarantine = pd.concat([bad_names, undecodable, duplicates], ignore_index=True)[QUARANTINE_COLUMNS]
    quarantine = quarantine.sort_values("path", kind="stable").reset_index(drop=True)
    if len(files) != len(screened) + len(quarantine):  # every file lands in exactly one table
        raise AssertionError(
            f"ingest lost files: {len(files)} found, {len(screened)} kept, {len(quarantine)} quarantined"
        )
    return screened, quarantine, skipped


def stratified_split(
    faces: pd.DataFrame,
    *,
    test_share: float,
    seed: int,
    strata: Sequence[str] = ("race", "gender", "age_band"),
) -> pd.Series:
    """``train``/``test`` for each row, drawn within each stratum (race × gender × age band).

    In a stratum of n rows, ``round(test_share * n)`` go to test, but at least one and at most
    n - 1 when n ≥ 2 (so every stratum with two or more faces appears in both splits); a
    stratum of one row goes to train. Rows are ordered by ``image_id`` within a stratum before
    the seeded shuffle, so the split does not depend on the input order.
    """
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"ingest.split.test_share must lie strictly between 0 and 1, got {test_share}")
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=faces.index, name="split", dtype=object)
    keys = faces[list(strata)].astype(str)
    for _, members in sorted(faces.groupby([keys[c] for c in strata], sort=True).groups.items()):
        ordered = faces.loc[members].sort_values("image_id").index.to_numpy()
        n = len(ordered)
        if n < 2:
            continue
        n_test = int(min(max(round(test_share * n), 1), n - 1))
        split.loc[ordered[rng.permutation(n)[:n_test]]] = "test"
    return split


def build_faces(
    decodable: pd.DataFrame,
    *,
    test_share: float,
    seed: int,
    bands: Sequence[Sequence[int]] = DEFAULT_AGE_BANDS,
) -> pd.DataFrame:
    """The ``faces`` table (columns :data:`FACE_COLUMNS`, sorted by ``image_id``)."""
    faces = decodable.sort_values("image_id", kind="stable").reset_index(drop=True)
    faces["age_band"] = age_bands(faces["age"], bands).astype(str)
    faces["split"] = stratified_split(faces, test_share=test_share, seed=seed).astype(str)
    for column in ("age", "gender", "race", "width", "height"):
        faces[column] = faces[column].astype("int64")
    return faces[FACE_COLUMNS]

"""The input contract of the report: which ``predictions`` tables can be audited, and why not.

A predictions table needs at least ``image_id`` and ``predicted_age`` (years, unrounded).
``age``, ``gender`` and ``race`` come from the table where it has them, else they are parsed from
UTKFace-style ids (``25_1_3_20170116174525125.jpg`` or ``....jpg.chip.jpg``; any folder part of
the id is ignored). So a vendor's CSV of two columns is enough for an audit.

Bad rows (unparseable ids, non-numeric, non-finite or negative predictions, predictions outside
the plausible range, labels out of range, duplicate ids) either stop the run with one error that
lists the first few and the count per reason, or, when the caller allows it, go to a quarantine
table with their reason. Each reason names the offending value as it was written ("empty cell"
for a cell with nothing in it).

The plausible range (0-120 years unless the caller says otherwise) is part of the contract, not a
statistic's concern: everything downstream may assume estimates within it (an estimate of 1e9
years once made a table allocate an array of a billion counts). A table with no rows, or none
left to audit, is refused here with the file named, rather than failing later in a statistic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from dex_bias.utkface import AGE_MAX, AGE_MIN, GENDER_NAMES, RACE_NAMES, LabelError, parse_utkface_name

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("image_id", "predicted_age")
LABEL_COLUMNS: tuple[str, ...] = ("age", "gender", "race")
QUARANTINE_COLUMNS: tuple[str, ...] = ("row", "image_id", "reason", "detail")
#: How many offending rows an error message lists per reason.
SHOWN_ROWS = 5
#: Predicted ages outside this range (years, inclusive) are not estimates of a human age.
PLAUSIBLE_AGE_RANGE: tuple[float, float] = (0.0, 120.0)


class PredictionsContractError(ValueError):
    """A predictions table the report cannot audit; the message says which rows and the fix."""


def describe_cell(value: object) -> str:
    """How an error names a cell's content: ``empty cell`` when it holds nothing, else the value
    as written (``'n/a'``, ``NaN``, ``1000000000.0``), never a bare ``nan``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "empty cell"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return "empty cell"
        try:
            float(text)
        except ValueError:
            return repr(value)
        return text  # a number written as text: as written
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return "NaN" if np.isnan(number) else repr(number)
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    return repr(value)


def _is_missing_id(value: object) -> bool:
    # A text column holds NaN where a cell was empty (pandas' missing-string marker).
    return describe_cell(value) in ("empty cell", "NaN")


def _basename(image_id: str) -> str:
    # Ids may carry a folder (either separator); UTKFace labels live in the file name alone.
    return PureWindowsPath(PurePosixPath(image_id).name).name


def _labels_from_ids(ids: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Parse UTKFace labels from ids; returns labels (NaN where unparseable) and the failure detail."""
    parsed = {"age": [], "gender": [], "race": []}
    failures = []
    for image_id in ids:
        try:
            labels = parse_utkface_name(_basename(str(image_id)))
        except LabelError as error:
            for key in parsed:
                parsed[key].append(np.nan)
            failures.append(f"{error.reason}: {error.detail}")
        else:
            parsed["age"].append(labels.age)
            parsed["gender"].append(labels.gender)
            parsed["race"].append(labels.race)
            failures.append("")
    return pd.DataFrame(parsed, index=ids.index, dtype=float), pd.Series(failures, index=ids.index)


def prepare_predictions(
    df: pd.DataFrame,
    *,
    allow_quarantine: bool = False,
    source: str = "predictions",
    quarantine_switch: str = "report.input.allow_quarantine",
    age_range: tuple[float, float] = PLAUSIBLE_AGE_RANGE,
    age_range_setting: str = "report.input.predicted_age_range",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check a predictions table against the contract and complete its labels.

    Args:
        df: at least ``image_id`` and ``predicted_age``; optional ``age``, ``gender`` (0 male,
            1 female), ``race`` (0-4, UTKFace codes); any other columns pass through.
        allow_quarantine: when False, any bad row raises ``PredictionsContractError``; when
            True, bad rows are set aside in the returned quarantine table instead.
        source: how to name the table in messages (a catalog name or a file path).
        quarantine_switch: the parameter the error message tells the user to set (each
            pipeline that reads predictions has its own).
        age_range: ``(low, high)`` plausible predicted ages in years, inclusive; estimates
            outside are refused like non-numeric ones.
        age_range_setting: the parameter that sets ``age_range``, named in messages.

    Returns:
        ``(predictions, quarantine)``: the valid rows with ``predicted_age`` float and ``age``,
        ``gender``, ``race`` int (index reset), and one quarantine row per bad input row with
        ``row`` (1-based data row, the header not counted), ``image_id``, ``reason``
        (``unparseable_id``, ``non_numeric_prediction``, ``negative_prediction``,
        ``implausible_prediction``, ``label_out_of_range``, ``duplicate_id``) and ``detail``
        naming the offending value. Every copy of a duplicated id
        is set aside: which copy is right cannot be told.

    Raises:
        PredictionsContractError: required columns missing or no rows (always), bad rows while
            ``allow_quarantine`` is False (the message lists the first rows and the count), or
            no row left to audit.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise PredictionsContractError(
            f"{source}: missing column(s) {missing}; the table has {list(df.columns)}. "
            "An audit needs at least 'image_id' (UTKFace-style file names when there are no "
            "'age', 'gender', 'race' columns) and 'predicted_age' (years). Rename the columns "
            "or add them."
        )
    low, high = (float(bound) for bound in age_range)
    if not low < high:
        raise ValueError(f"{age_range_setting} must be [low, high] with low < high, got {list(age_range)}")
    if df.empty:
        raise PredictionsContractError(
            f"{source}: no rows to audit (a header {list(df.columns)} and no data rows). Put one row "
            "per image in it (at least 'image_id' and 'predicted_age'); when the infer pipeline made it, "
            "see `inference_failures` for why no face was predicted."
        )
    table = df.reset_index(drop=True).copy()
    id_missing = table["image_id"].map(_is_missing_id).astype(bool)
    table["image_id"] = table["image_id"].astype(object).where(~id_missing, "").astype(str)
    problems: list[pd.DataFrame] = []

    def flag(mask: pd.Series, reason: str, detail: pd.Series | str) -> None:
        if mask.any():
            detail_values = detail[mask] if isinstance(detail, pd.Series) else detail
            problems.append(
                pd.DataFrame(
                    {
                        "row": table.index[mask] + 1,
                        "image_id": table.loc[mask, "image_id"],
                        "reason": reason,
                        "detail": detail_values,
                    }
                )
            )

    # Labels: the table's own where present, else parsed from the id.
    parsed, parse_failure = _labels_from_ids(table["image_id"])
    label_missing = pd.Series(False, index=table.index)
    for column in LABEL_COLUMNS:
        given = (
            pd.to_numeric(table[column], errors="coerce").astype("float64")
            if column in table
            else pd.Series(np.nan, index=table.index)
        )
        table[column] = given.fillna(parsed[column])
        label_missing |= table[column].isna()
    id_detail = parse_failure.where(parse_failure != "", "no labels in the table and none in the id")
    flag(label_missing, "unparseable_id", id_detail.where(~id_missing, "image_id is an empty cell"))

    written = table["predicted_age"].map(describe_cell)
    # + 0.0 turns -0.0 into 0.0, so no estimate reads as "-0" further on.
    prediction = pd.to_numeric(table["predicted_age"], errors="coerce").astype("float64") + 0.0
    not_numeric = prediction.isna() | ~np.isfinite(prediction.fillna(0.0))
    flag(
        not_numeric,
        "non_numeric_prediction",
        "predicted_age is " + written.replace("empty cell", "an empty cell") + ", not a finite number of years",
    )
    negative = ~not_numeric & (prediction < 0)
    flag(negative, "negative_prediction", "predicted_age " + written + " is below 0")
    implausible = ~not_numeric & ~negative & ~prediction.between(low, high)
    flag(
        implausible,
        "implausible_prediction",
        "predicted_age " + written + f" is outside the plausible range {low:g}-{high:g} years ({age_range_setting})",
    )
    table["predicted_age"] = prediction

    known = ~label_missing
    out_of_range = known & ~(
        table["age"].between(AGE_MIN, AGE_MAX)
        & table["gender"].isin(list(GENDER_NAMES))
        & table["race"].isin(list(RACE_NAMES))
    )
    flag(
        out_of_range,
        "label_out_of_range",
        "age "
        + table["age"].astype(str)
        + ", gender "
        + table["gender"].astype(str)
        + ", race "
        + table["race"].astype(str)
        + f" (need age {AGE_MIN}-{AGE_MAX}, gender 0/1, race 0-4)",
    )

    duplicated = table["image_id"].duplicated(keep=False) & ~id_missing
    counts = table["image_id"].map(table["image_id"].value_counts())
    flag(duplicated, "duplicate_id", "image_id appears " + counts.astype(str) + " times")

    quarantine = (
        pd.concat(problems, ignore_index=True).sort_values(["row", "reason"], kind="stable").reset_index(drop=True)
        if problems
        else pd.DataFrame({c: pd.Series(dtype=object if c != "row" else int) for c in QUARANTINE_COLUMNS})
    )
    if len(quarantine) and not allow_quarantine:
        raise PredictionsContractError(_describe(quarantine, len(table), source, quarantine_switch))
    bad_rows = set(quarantine["row"] - 1)
    valid = table.loc[~table.index.isin(bad_rows)].reset_index(drop=True)
    if valid.empty:
        raise PredictionsContractError(
            _describe(
                quarantine,
                len(table),
                source,
                quarantine_switch,
                ending=("No row is left to audit. Fix those rows (rows are numbered from 1 after the header)."),
            )
        )
    for column in LABEL_COLUMNS:
        valid[column] = valid[column].astype(int)
    logger.info(
        "%s: %d rows in, %d valid, %d set aside (%s)",
        source,
        len(table),
        len(valid),
        len(bad_rows),
        quarantine["reason"].value_counts().to_dict() if len(quarantine) else "none",
    )
    return valid, quarantine


def audited_splits(
    predictions: pd.DataFrame, splits: Sequence[str] | None, *, source: str, setting: str
) -> pd.DataFrame:
    """The rows of the audited ``splits`` (index reset): rows of other splits, e.g. the training
    split, on which a model looks better than it is, are left out, counted and logged.

    A table without ``split``, an empty one, or ``splits`` empty or None: audited whole.

    Raises:
        ValueError: no row has one of ``splits``; the message lists the splits present and names
            ``setting``, the parameter to change.
    """
    if predictions.empty or not splits or "split" not in predictions.columns:
        return predictions
    kept = predictions["split"].astype(str).isin([str(s) for s in splits])
    logger.info(
        "report: auditing %d rows of split(s) %s; %d rows of other splits left out (%s)",
        kept.sum(),
        list(splits),
        (~kept).sum(),
        predictions.loc[~kept, "split"].value_counts().to_dict(),
    )
    if not kept.any():
        raise ValueError(
            f"{source}: no row has split in {list(splits)} (splits present: "
            f"{sorted(predictions['split'].astype(str).unique())}). Set {setting} to one of those, "
            "or to null to audit every row."
        )
    return predictions[kept].reset_index(drop=True)


def _describe(
    quarantine: pd.DataFrame, total: int, source: str, quarantine_switch: str, ending: str | None = None
) -> str:
    lines = [f"{source}: {quarantine['row'].nunique()} of {total} rows cannot be audited."]
    for reason, rows in quarantine.groupby("reason", sort=False):
        shown = "; ".join(f"row {r.row} ({r.image_id!r}): {r.detail}" for r in rows.head(SHOWN_ROWS).itertuples())
        more = f" … and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        lines.append(f"  - {reason}: {len(rows)} rows, e.g. {shown}{more}")
    lines.append(
        ending
        or (
            "Fix those rows (rows are numbered from 1 after the header), or set "
            f"`{quarantine_switch}: true` (or `--params {quarantine_switch}=true`) to go on with the "
            "other rows; the set-aside rows are then listed with their reason."
        )
    )
    return "\n".join(lines)

"""Tables as a person would write them: human headers, an estimate and its interval in one cell.

A :class:`DisplayTable` is what a report template draws: header labels with their units
("MAE (years)", not ``mae_ci_low``), one text per cell (``6.29 (6.15–6.42)``; status codes in
words: "no cases", "small group"), whether it starts collapsed, and the table's own CSV as a
``data:`` URI, so the file a reader downloads is the statistics table itself (every column, full
precision) while the HTML stays one self-contained file.

Each statistics table has a column list here (:data:`GATE_COLUMNS`, :func:`group_metric_columns` …) that names the
source column of each display column and its unit, and an interval column finds its bounds by
the tables' convention (``<name>_ci_low``/``<name>_ci_high``, or ``ci_low``/``ci_high`` for a
rate). Columns a frame lacks are left out, so one list serves the audit and the comparison.
A table whose display columns are text made from several statistics columns (a note, "147 / 553",
"A − B") has a function that adds them (:func:`with_note`, :func:`tests_display` …), given to
:func:`display_table` as ``show``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from dex_bias.report import formats

#: Tables with more rows than this start collapsed (a ``<details>`` the reader opens).
COLLAPSE_ABOVE = 20

#: Metrics measured in years; every other metric of a spread table is a share (shown in %).
YEAR_METRICS = frozenset({"mae", "balanced_mae", "median_absolute_error", "mean_signed_error", "rmse"})

#: Metric and measure names as a reader says them (a code not listed reads with spaces).
NAME_WORDS = {
    "mae": "MAE",
    "balanced_mae": "balanced MAE",
    "rmse": "RMSE",
    "median_absolute_error": "median absolute error",
    "mean_signed_error": "mean signed error",
    "absolute_error": "absolute error",
    "signed_error": "signed error",
    "gate_event": "gate outcome",
    "minors_accepted": "minors accepted",
    "teens_accepted": "13–17-year-olds accepted",
    "adults_challenged": "18–24-year-olds challenged",
    "adults_refused": "adults refused",
    "challenge_false_positive": "challenge-age false positives",
    "age_range_estimate": "13–16 classification",
    "verification_minors_pass": "verification: minors passing",
    "verification_adults_fail": "verification: adults failing",
    "interocular_distance": "interocular distance",
    "yaw_index": "head yaw",
    "no_difference_found": "no difference found",
    "higher": "higher",
    "lower": "lower",
    "groups_differ": "groups differ",
    "age_band": "age band",
}


def words(name: object) -> str:
    """A code as words: ``minors_accepted`` -> "minors accepted", ``within_5`` -> "within 5 years"."""
    if formats.is_missing(name) and not isinstance(name, str):
        return ""
    text = str(name)
    if text in NAME_WORDS:
        return NAME_WORDS[text]
    within = re.fullmatch(r"within_(\d+)", text)
    if within:
        return f"within {within.group(1)} years"
    gate = re.fullmatch(r"([a-z_]+) at (\d+(?:\.\d+)?)", text)  # "minors_accepted at 25"
    if gate and gate.group(1) in NAME_WORDS:
        return f"{NAME_WORDS[gate.group(1)]} at {gate.group(2)}"
    return text.replace("_", " ")


def metric_label(metric: object) -> str:
    """A metric with its unit: ``mae`` -> "MAE (years)", ``within_5`` -> "within 5 years (%)"."""
    base = str(metric).split(" at ")[0]
    return f"{words(metric)} ({'years' if base in YEAR_METRICS else '%'})"


def _is_years(metric: object) -> bool:
    return str(metric).split(" at ")[0] in YEAR_METRICS


def _whole(value: object) -> str:
    return formats.MISSING if formats.is_missing(value) else f"{float(value):g}"  # type: ignore[arg-type]


def _percent_whole(value: object) -> str:
    return formats.MISSING if formats.is_missing(value) else f"{100 * float(value):g}"  # type: ignore[arg-type]


def _text(value: object) -> str:
    return "" if formats.is_missing(value) and not isinstance(value, str) else str(value)


#: Unit name -> (formatter, numeric?, signed?). Numeric cells align right.
UNITS: dict[str, tuple[Callable[[object], str], bool, bool]] = {
    "text": (_text, False, False),
    "words": (words, False, False),
    "status": (lambda value: note_words(value), False, False),
    "count": (formats.count, True, False),
    "whole": (_whole, True, False),
    "years": (formats.years, True, False),
    "signed_years": (formats.signed, True, True),
    "percent": (formats.percent, True, False),
    "percent_whole": (_percent_whole, True, False),
    "points": (formats.points, True, True),
    "p": (formats.p_value, True, False),
    "r": (formats.signed, True, True),
    "gini": (lambda value: formats.fixed(value, 3), True, False),
    "ratio": (formats.fixed, True, False),
    "decimal1": (lambda value: formats.fixed(value, 1), True, False),
    "decimal2": (formats.fixed, True, False),
}


@dataclass(frozen=True)
class Column:
    """One display column: its header, the source column and how its values read.

    ``unit`` is a key of :data:`UNITS`, or a function of the row giving one (a spread table's
    units follow each row's metric). ``interval``: show ``value (low–high)`` from ``low`` and
    ``high`` (by default ``<source>_ci_low`` and ``<source>_ci_high``). ``title``: a tooltip that
    says what the header means. ``label``: a row label (feature, measure …) left blank where it
    repeats the row above, as a printed table does (the CSV keeps every value).
    """

    header: str
    source: str
    unit: str | Callable[[Mapping[str, object]], str] = "text"
    interval: bool = False
    low: str | None = None
    high: str | None = None
    title: str | None = None
    label: bool = False

    def bounds(self) -> tuple[str, str]:
        """The columns holding the interval's bounds."""
        return (self.low or f"{self.source}_ci_low", self.high or f"{self.source}_ci_high")


@dataclass(frozen=True)
class Header:
    """A display column's label, whether it holds numbers (aligned right), and its tooltip."""

    text: str
    numeric: bool
    title: str | None = None


class Shown:
    """What a reader sees of a value: ``main`` (the estimate, or text) and ``interval``
    ("(low–high)", may be empty), for a display table's cell and a report card's alike."""

    main: str
    interval: str

    @property
    def text(self) -> str:
        """The value and its interval as one string: ``6.29 (6.15–6.42)``, or ``main`` alone."""
        return f"{self.main} {self.interval}" if self.interval else self.main


@dataclass(frozen=True)
class Cell(Shown):
    """One cell: its estimate (or text), its interval ("(low–high)", may be empty), numeric or not."""

    main: str
    numeric: bool
    interval: str = ""


@dataclass(frozen=True)
class DisplayTable:
    """A table ready for the template: headers, rows of cells, its CSV, collapsed or not."""

    key: str
    headers: list[Header]
    rows: list[list[Cell]]
    csv_name: str
    csv_uri: str
    collapsed: bool
    row_classes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """How many rows the table has."""
        return len(self.rows)


def csv_data_uri(frame: pd.DataFrame) -> str:
    """The CSV of ``frame`` (no index, UTF-8) as a base64 ``data:text/csv`` URI."""
    payload = frame.to_csv(index=False).encode("utf-8")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(payload).decode("ascii")


def _cell(row: Mapping[str, object], column: Column) -> Cell:
    unit = column.unit(row) if callable(column.unit) else column.unit
    formatter, numeric, with_sign = UNITS[unit]
    value = row.get(column.source)
    if numeric and formats.is_missing(value):
        # A group nobody is counted in has no rate or error: say so, never an empty or 0 % cell.
        status = str(row.get("status", ""))
        return Cell("no cases" if column.interval and status.startswith("no_cases") else formats.MISSING, True)
    if column.interval:
        low, high = column.bounds()
        main, bounds = formats.interval_parts(value, row.get(low), row.get(high), formatter, with_sign=with_sign)
        return Cell(main, numeric, bounds)
    return Cell(formatter(value), numeric)


def display_table(
    key: str,
    frame: pd.DataFrame | None,
    columns: Sequence[Column],
    *,
    show: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    csv: pd.DataFrame | None = None,
    collapsed: bool | None = None,
    group_by: str | None = "grouping",
) -> DisplayTable:
    """The display form of ``frame``: ``columns`` present in it, one cell each per row.

    Args:
        key: the table's name: the CSV's file name and the HTML anchor.
        frame: the statistics table (may be empty or None: a table without rows).
        columns: display columns; a column whose source is not in ``frame`` is left out.
        show: adds to ``frame`` the text columns that ``columns`` read (:func:`with_note`,
            :func:`tests_display` …); called only when ``frame`` has rows. The CSV is ``frame``
            as it was given, without them.
        csv: the frame offered as CSV (default ``frame`` as given).
        collapsed: start collapsed; default when it has more than :data:`COLLAPSE_ABOVE` rows.
        group_by: a column whose change of value starts a visual group of rows.
    """
    frame = pd.DataFrame() if frame is None else frame
    csv = frame if csv is None else csv
    if show is not None and not frame.empty:
        frame = show(frame)
    shown = [c for c in columns if c.source in frame.columns]
    headers = [Header(c.header, callable(c.unit) or UNITS[c.unit][1], c.title) for c in shown]
    records = frame.to_dict("records")
    rows = [[_cell(record, column) for column in shown] for record in records]
    starts = [False] * len(records)
    if group_by and group_by in frame.columns:
        values = frame[group_by].astype(str).tolist()
        starts = [i > 0 and values[i] != values[i - 1] for i in range(len(values))]
    _blank_repeated_labels(rows, [c.label for c in shown], starts)
    # A column with nothing in it (a status column of a table where every row is "ok") is left out.
    kept = [i for i in range(len(shown)) if not rows or any(row[i].text for row in rows)]
    headers, rows = [headers[i] for i in kept], [[row[i] for i in kept] for row in rows]
    return DisplayTable(
        key=key,
        headers=headers,
        rows=rows,
        csv_name=f"{key}.csv",
        csv_uri=csv_data_uri(csv),
        collapsed=len(rows) > COLLAPSE_ABOVE if collapsed is None else collapsed,
        row_classes=[_row_class(record, start) for record, start in zip(records, starts)],
    )


def _blank_repeated_labels(rows: list[list[Cell]], labels: list[bool], starts: list[bool]) -> None:
    """Blank a label cell that repeats the row above while every label to its left repeats too."""
    for index in range(len(rows) - 1, 0, -1):
        for position, is_label in enumerate(labels):
            if not is_label:
                break
            if rows[index][position].text != rows[index - 1][position].text:
                break
            rows[index][position] = Cell("", rows[index][position].numeric)


def _row_class(record: Mapping[str, object], starts_group: bool) -> str:
    small = str(record.get("status", "")).startswith("small_group") or record.get("small_group") is True
    return " ".join(name for name, on in (("group-start", starts_group), ("small-group", small)) if on)


def transposed_table(key: str, frame: pd.DataFrame, by: str, labels: Mapping[str, str]) -> DisplayTable:
    """One column per value of ``by`` (e.g. per model) and one row per field: a spec sheet.

    ``labels`` maps the fields shown (in order) to their row labels; the CSV is ``frame`` as is.
    """
    names = [str(v) for v in frame[by]] if by in frame.columns else []
    headers = [Header("", False)] + [Header(name, False) for name in names]
    rows = []
    for source, label in labels.items():
        if source not in frame.columns:
            continue
        rows.append([Cell(label, False)] + [Cell(_text(value), False) for value in frame[source]])
    return DisplayTable(
        key=key,
        headers=headers,
        rows=rows,
        csv_name=f"{key}.csv",
        csv_uri=csv_data_uri(frame),
        collapsed=False,
        row_classes=[""] * len(rows),
    )


# --------------------------------------------------------------------------------------------
# The statistics tables' columns.

GROUP = [Column("Grouping", "grouping", "words", label=True), Column("Group", "group")]
MODEL = [Column("Model", "model", label=True)]


def group_metric_columns(frame: pd.DataFrame) -> list[Column]:
    """``group_metrics`` (and the comparison's per-model metrics): errors with their intervals."""
    within = sorted((c for c in frame.columns if re.fullmatch(r"within_\d+", c)), key=lambda c: int(c.split("_")[1]))
    return [
        *MODEL,
        Column(
            "Bands",
            "band_scheme",
            "words",
            label=True,
            title="audit: this audit's age bands; article: the dex-model-analysis article's",
        ),
        *GROUP,
        Column("n", "n", "count"),
        Column("MAE (years)", "mae", "years", interval=True, title="mean absolute error, 95% bootstrap interval"),
        Column("Median AE (years)", "median_absolute_error", "years", title="median absolute error"),
        Column(
            "Mean signed error (years)",
            "mean_signed_error",
            "signed_years",
            interval=True,
            title="mean of predicted − true age: positive = estimated too old",
        ),
        Column("RMSE (years)", "rmse", "years", title="root mean squared error"),
        *[
            Column(
                f"Within {c.split('_')[1]} years (%)",
                c,
                "percent",
                interval=True,
                title=f"share of estimates within {c.split('_')[1]} years of the true age",
            )
            for c in within
        ],
        Column(
            "Balanced MAE (years)",
            "balanced_mae",
            "years",
            interval=True,
            title="mean of the MAEs of fixed age band × gender reference cells",
        ),
        Column("Note", "note", "text"),
    ]


def with_note(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``note`` column: its ``notes`` in words, else its status in words."""
    notes = frame["notes"] if "notes" in frame.columns else pd.Series("", index=frame.index)
    status = frame["status"] if "status" in frame.columns else pd.Series("", index=frame.index)
    note = [n if isinstance(n, str) and n.strip() else s for n, s in zip(notes, status)]
    # The row shows its n: "small group" says the rest of the engine's "small group: n=6 < 30, ...".
    note = [_SMALL_NOTE.sub("small group", text) if isinstance(text, str) else text for text in note]
    return frame.assign(note=[note_words(text) for text in note])


_SMALL_NOTE = re.compile(r"small group: n=\d+ < \d+, estimates indicative only")


def note_words(text: object) -> str:
    """A note or status in words: codes such as ``balanced_mae`` or ``too_small`` as a reader says them."""
    # Notes name metrics by their column ("balanced_mae: not defined ..."): say those as words
    # first, so the status clause codes that remain read as statuses.
    if not isinstance(text, str):
        return formats.status_words(text)
    named = re.sub(
        r"\b[a-z0-9]+(?:_[a-z0-9]+)*\b",
        lambda match: words(match.group(0)) if match.group(0) in NAME_WORDS else match.group(0),
        text,
    )
    return formats.status_words(named)


RATE = Column(
    "Rate (%)",
    "rate",
    "percent",
    interval=True,
    low="ci_low",
    high="ci_high",
    title="share counted, 95% Wilson interval",
)
COUNTED = [
    Column("Counted", "events", "count", title="people the measure counts"),
    Column("n", "n", "count", title="people in the group the measure applies to"),
]
STATUS = Column("Status", "status", "status")

GATE_COLUMNS = [
    *MODEL,
    Column("Measure", "measure", "words", label=True),
    Column("Challenge age", "challenge_age", "whole", label=True),
    *GROUP,
    *COUNTED,
    RATE,
    STATUS,
]

VERIFICATION_COLUMNS = [
    Column("Measure", "metric", "words", label=True),
    Column("What is counted", "parameters", label=True),
    *GROUP,
    Column("Threshold (years)", "threshold", "years"),
    *COUNTED,
    RATE,
    Column("Note", "note", "text"),
]


def _spread_unit(row: Mapping[str, object]) -> str:
    # A spread is in its metric's unit: years for errors, percentage points for shares.
    return "years" if _is_years(row.get("metric")) else "percent"


def spread_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``group_spread`` with the highest and lowest group and their value in one text each."""

    def side(row: Mapping[str, object], which: str) -> str:
        group, value = row.get(f"{which}_group"), row.get(f"{which}_value")
        if formats.is_missing(value):
            return ""
        shown = formats.years(value) if _is_years(row.get("metric")) else formats.percent(value)
        return f"{group}: {shown}"

    records = frame.to_dict("records")
    return frame.assign(
        metric_label=[metric_label(r.get("metric")) for r in records],
        highest=[side(r, "max") for r in records],
        lowest=[side(r, "min") for r in records],
    )


SPREAD_COLUMNS = [
    *MODEL,
    Column("Across", "feature", "words", label=True),
    Column("Metric", "metric_label"),
    Column("What is counted", "parameters"),
    Column("Groups", "groups", "count"),
    Column("Highest", "highest"),
    Column("Lowest", "lowest"),
    Column(
        "Max − min",
        "max_minus_min",
        _spread_unit,
        interval=True,
        title="range of the group values, in the metric's unit (percentage points for %), 95% bootstrap interval",
    ),
    Column("Max / min", "max_over_min", "ratio"),
    Column(
        "Gini",
        "gini",
        "gini",
        interval=True,
        title="Gini coefficient of the group values: 0 all equal, 1 maximally unequal",
    ),
    Column("Left out (n below the minimum)", "groups_left_out"),
    STATUS,
]

BUFFER_COLUMNS = [
    *GROUP,
    Column("Minors accepted at most (%)", "target_rate", "percent_whole"),
    Column("Minors", "minors", "count"),
    Column("Challenge age needed", "needed", "text"),
    Column("Buffer (years)", "buffer_years", "whole", title="challenge age needed minus the legal age"),
    Column("Minors accepted at it (%)", "rate_at_buffer", "percent"),
    STATUS,
]


def buffers_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``challenge_age_buffers`` with the age needed as text: "more than 40" where none was enough."""
    needed = [
        ("more than " if status == "not_reached" else "") + _whole(age)
        if not formats.is_missing(age)
        else formats.MISSING
        for age, status in zip(frame["buffer_challenge_age"], frame["status"])
    ]
    return frame.assign(needed=needed)


def tests_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``significance_tests`` with the compared sizes in one text (``147 / 553``)."""
    return frame.assign(
        sizes=[f"{formats.count(a)} / {formats.count(b)}" for a, b in zip(frame["n_used"], frame["n_b_used"])]
    )


_P_HOLM = Column("p (Holm)", "p_corr", "p", title="Holm-corrected over the family this row belongs to")
_P_RAW = Column("p (uncorrected)", "p_unc", "p")
_FAMILY = Column("Tests in family", "holm_family_size", "count", title="how many tests the Holm correction covers")
_RESULT = Column("Result", "direction", "words")
_SIZES = Column("n (group / others)", "sizes", "text", title="faces in the strata both sides have")

FEATURE, OUTCOME = Column("Feature", "feature", "words", label=True), Column("Outcome", "outcome", "words", label=True)
GROUP_TEST_COLUMNS = [
    FEATURE,
    OUTCOME,
    Column("Group", "group"),
    _SIZES,
    Column(
        "Difference (years)",
        "difference",
        "signed_years",
        interval=True,
        title="stratum-standardised: the group's mean minus the others', 95% bootstrap interval",
    ),
    _P_HOLM,
    _P_RAW,
    _FAMILY,
    _RESULT,
    STATUS,
]
PAIRWISE_COLUMNS = [
    FEATURE,
    OUTCOME,
    Column("Group", "group"),
    Column("Compared with", "group_b"),
    _SIZES,
    Column("Difference (years)", "difference", "signed_years", interval=True),
    _P_HOLM,
    _P_RAW,
    _FAMILY,
    _RESULT,
    STATUS,
]
OMNIBUS_COLUMNS = [
    FEATURE,
    OUTCOME,
    Column("n", "n", "count"),
    Column("Statistic", "statistic", "decimal2"),
    _P_HOLM,
    _P_RAW,
    _FAMILY,
    _RESULT,
    STATUS,
]
GATE_TEST_COLUMNS = [
    FEATURE,
    Column("Measure", "measure", "words", label=True),
    Column("Challenge age", "challenge_age", "whole", label=True),
    Column("Group", "group"),
    _SIZES,
    Column("Difference (percentage points)", "difference", "points", interval=True),
    _P_HOLM,
    _P_RAW,
    _FAMILY,
    _RESULT,
    STATUS,
]
#: The families of ``significance_tests``, each shown as its own table, in the report's order.
TEST_FAMILY_COLUMNS = {
    "group_vs_rest": GROUP_TEST_COLUMNS,
    "omnibus": OMNIBUS_COLUMNS,
    "gate_vs_rest": GATE_TEST_COLUMNS,
    "pairwise": PAIRWISE_COLUMNS,
}

QUALITY_SUMMARY_COLUMNS = [
    *GROUP,
    Column("n", "n", "count"),
    Column("Median interocular distance (px)", "median_interocular_distance", "decimal1"),
    Column("Median |head yaw| (0 frontal, 1 profile)", "median_abs_yaw_index", "decimal2"),
]
QUALITY_COLUMNS = [
    Column("Measure", "covariate", "words", label=True),
    Column("Bin", "bin", label=True),
    *GROUP,
    Column("n", "n", "count"),
    Column("MAE (years)", "mae", "years", interval=True),
    STATUS,
]

NORMALITY_COLUMNS = [
    Column("Race", "race", label=True),
    Column("Gender", "gender", label=True),
    Column("Age band", "age_band"),
    Column("n", "n", "count"),
    Column("Mean predicted age", "mean_predicted_age", "decimal2"),
    Column("SD of predicted age", "sd_predicted_age", "decimal2"),
    Column("K²", "k2", "decimal2", title="D'Agostino–Pearson statistic: shape, not bias"),
    Column("p (K²)", "k2_p", "p"),
    Column(
        "Dispersion χ²",
        "dispersion_chi2",
        "decimal2",
        title="the article's chi-square: Σ(x − x̄)²/x̄ of the rounded predictions",
    ),
    Column("Degrees of freedom", "dispersion_dof", "count"),
    Column("p (χ²)", "dispersion_p", "p"),
    STATUS,
]
_CORRELATION = [
    Column("n", "n", "count"),
    Column("Pearson r", "pearson_r", "r"),
    Column("p", "p", "p"),
    Column("p (FDR)", "p_fdr", "p", title="adjusted for the false discovery rate over the table"),
    STATUS,
]
ARTICLE_CORRELATION_COLUMNS = [
    Column("Race", "race", label=True),
    Column("Age band", "age_band", label=True),
    Column("Images", "subset", "words", label=True),
    Column("Feature", "feature", "words"),
    *_CORRELATION,
]
REGION_CORRELATION_COLUMNS = [
    Column("Race", "race", label=True),
    Column("Age band", "age_band", label=True),
    Column("Images", "subset", "words", label=True),
    Column("Region", "region", "words"),
    *_CORRELATION,
]

GENDER_COLUMNS = [
    *GROUP,
    Column("n", "n", "count"),
    Column("Accuracy (%)", "accuracy", "percent", interval=True),
    Column("Men", "n_male", "count"),
    Column("Women", "n_female", "count"),
    Column(
        "Men read as women (%)",
        "male_read_as_female_rate",
        "percent",
        interval=True,
        low="male_read_as_female_ci_low",
        high="male_read_as_female_ci_high",
    ),
    Column(
        "Women read as men (%)",
        "female_read_as_male_rate",
        "percent",
        interval=True,
        low="female_read_as_male_ci_low",
        high="female_read_as_male_ci_high",
    ),
    STATUS,
]

#: Table names as a reader says them (the "what could not be computed" list).
TABLE_WORDS = {
    "group_metrics": "Errors by group",
    "significance_tests": "Between-group tests",
    "age_gate_metrics": "Gate rates",
    "age_verification_metrics": "NIST age-verification measures",
    "group_spread": "Spread across groups",
    "paper_normality_table": "Appendix A",
}


def not_computed_display(frame: pd.DataFrame) -> pd.DataFrame:
    """The "not computed" list with table names and statuses in words."""
    examples = []
    for example in frame["example"]:
        label, _, status = str(example).rpartition(": ")
        examples.append(f"{note_words(label)}: {note_words(status)}" if label else note_words(status))
    return frame.assign(
        table_words=[TABLE_WORDS.get(t, words(t)) for t in frame["table"]],
        status_words=[formats.status_words(s) for s in frame["status"]],
        example_words=examples,
    )


NOT_COMPUTED_COLUMNS = [
    Column("Table", "table_words", label=True),
    Column("What is missing", "status_words"),
    Column("Rows", "rows", "count"),
    Column("Example", "example_words"),
]
QUARANTINE_COLUMNS = [
    Column("Row", "row", "count", title="data row of the input (the header not counted)"),
    Column("Image", "image_id"),
    Column("Reason", "reason", "status"),
    Column("Detail", "detail"),
]

# The comparison's own tables.
COVERAGE_COLUMNS = [
    *MODEL,
    Column("Faces predicted", "predicted", "count"),
    Column("Faces compared", "compared", "count"),
    Column("Left out (not predicted by every model)", "left_out", "count"),
]
PAIRED_COLUMNS = [
    Column("Models", "models", label=True),
    *GROUP,
    Column("n", "n", "count"),
    Column(
        "Mean difference in absolute error (years)",
        "mean_difference",
        "signed_years",
        interval=True,
        title="first model minus second on the same faces: negative = the first is more accurate",
    ),
    Column(
        "Rank-biserial",
        "rank_biserial",
        "r",
        interval=True,
        title="the effect the Wilcoxon test ranks: negative = the first model's errors are smaller",
    ),
    Column("p (Holm)", "p_corr", "p"),
    Column("Verdict", "verdict"),
    STATUS,
]
ATTENTION_COLUMNS = [
    *MODEL,
    Column("Race", "race", label=True),
    Column("Region", "region", "words"),
    Column("Mean LIME weight (years)", "mean_weight", "signed_years"),
    Column("Images", "images", "count"),
]
DECLARATION_LABELS = {
    "format": "Format",
    "file": "File",
    "sha256": "SHA-256 (first 16 digits)",
    "input": "Input",
    "age output": "Age output",
    "gender": "Gender output",
    "source": "Source",
    "licence": "Licence",
    "trained_on": "Trained on",
}


def paired_display(frame: pd.DataFrame) -> pd.DataFrame:
    """``model_paired_tests`` with the two models in one text ("A − B")."""
    return frame.assign(models=[f"{a} − {b}" for a, b in zip(frame["model_a"], frame["model_b"])])

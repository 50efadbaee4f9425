"""How the reports write numbers and codes: one place for digits, units, intervals and status words.

Every estimate the reports print goes through these functions, so a number reads the same in
the report card, in the findings and in the tables: years to two decimals ("6.29"), shares as
percentages to one decimal ("16.9%"), differences of shares in percentage points, p-values to
three significant digits ("< 0.0001" below that), and an estimate with
its interval in one string ("6.29 (6.15–6.42)"; "+1.01 (+0.46 to +1.51)" when the values carry
a sign, since an en dash between negative numbers misleads). Missing values read as an em dash.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable

#: What a missing value reads as (a number that could not be computed, never 0).
MISSING = "—"


def is_missing(value: object) -> bool:
    """True for None, NaN and pandas' NA (anything that is not a finite number)."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def fixed(value: object, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals (no sign for positives), or the missing mark."""
    return MISSING if is_missing(value) else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def signed(value: object, digits: int = 2) -> str:
    """``value`` with an explicit sign (``+1.01``, ``-0.50``): a signed error or a difference."""
    return MISSING if is_missing(value) else f"{float(value):+.{digits}f}"  # type: ignore[arg-type]


def years(value: object) -> str:
    """Years of age or of error, two decimals (``5.10``)."""
    return fixed(value, 2)


def percent(value: object, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage without the sign (``0.169`` -> ``16.9``)."""
    return MISSING if is_missing(value) else f"{100 * float(value):.{digits}f}"  # type: ignore[arg-type]


def level(confidence: float) -> str:
    """An interval's confidence level as the text says it, without the sign (``0.95`` -> ``95``)."""
    return f"{100 * confidence:g}"


def points(value: object, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed (``+5.3``)."""
    return MISSING if is_missing(value) else f"{100 * float(value):+.{digits}f}"  # type: ignore[arg-type]


def count(value: object) -> str:
    """A whole number with thousands separated (``9,778``)."""
    return MISSING if is_missing(value) else f"{int(round(float(value))):,}"  # type: ignore[arg-type]


def p_value(p: object) -> str:
    """A p-value to three significant digits (``0.00420``, ``0.0499``, ``0.731``), ``< 0.0001`` below that.

    Digits are cut, not rounded, so the printed p is never above the true one: a p just under
    the significance level never reads as the level itself (0.04996 prints "0.0499", where
    rounding would print "0.0500" next to a finding flagged at α = 0.05), and a printed p at or
    above a level of three digits or fewer means the true p is too.
    """
    if is_missing(p):
        return MISSING
    p = float(p)  # type: ignore[arg-type]
    if p < 1e-4:
        return "< 0.0001"
    exponent = decimal.Decimal(repr(p)).adjusted()  # position of the first significant digit
    cut = decimal.Decimal(repr(p)).quantize(decimal.Decimal(1).scaleb(exponent - 2), rounding=decimal.ROUND_FLOOR)
    return f"{cut:f}"


def p_phrase(p: object) -> str:
    """``p < 0.0001`` or ``p = 0.0400``: a p-value inside a sentence."""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def interval_parts(
    value: object, low: object, high: object, fmt: Callable[[object], str] = years, *, with_sign: bool = False
) -> tuple[str, str]:
    """``(estimate, "(low–high)")`` as two strings, so a table cell can wrap between them.

    With ``with_sign`` (the formatter prints signs) the bounds are joined by " to ", which reads
    right when they are negative: ``-0.09 (-1.02 to +1.01)``. A missing bound leaves the estimate
    alone (the second string is empty); a missing estimate is the missing mark.
    """
    if is_missing(value):
        return MISSING, ""
    if is_missing(low) or is_missing(high):
        return fmt(value), ""
    joiner = " to " if with_sign else "–"
    return fmt(value), f"({fmt(low)}{joiner}{fmt(high)})"


def interval(
    value: object, low: object, high: object, fmt: Callable[[object], str] = years, *, with_sign: bool = False
) -> str:
    """``value (low–high)`` in one string, each formatted by ``fmt`` (see :func:`interval_parts`)."""
    main, bounds = interval_parts(value, low, high, fmt, with_sign=with_sign)
    return f"{main} {bounds}" if bounds else main


#: Status codes of the statistics tables and the words a reader sees for them.
STATUS_WORDS = {
    "ok": "",
    "small_group": "small group",
    "no_cases": "no cases",
    "too_few_groups": "too few groups",
    "too_small": "too few faces",
    "no_variation": "no variation",
    "undefined": "undefined",
    "no_minors": "no minors",
    "not_reached": "not reached",
    "not_tested": "not tested",
    "no_male_faces": "no male faces",
    "no_female_faces": "no female faces",
}

_CODE = re.compile(r"^([a-z0-9]+(?:_[a-z0-9]+)+|ok|undefined)\b")


def status_words(status: object) -> str:
    """A status as a reader says it: ``too_small (n=9 < 10)`` -> ``too few faces (n=9 < 10)``.

    Each ``;``-separated clause loses its code (known codes by their words, any other
    ``snake_case`` code with spaces for underscores) and keeps its explanation; ``ok`` is empty,
    and ``>=`` reads as ``≥``.
    """
    if is_missing(status) and not isinstance(status, str):
        return ""
    clauses = []
    for clause in str(status).split(";"):
        clause = clause.strip()
        match = _CODE.match(clause)
        if match:
            code = match.group(1)
            clause = STATUS_WORDS.get(code, code.replace("_", " ")) + clause[match.end() :]
        clause = clause.replace(">=", "≥").replace("<=", "≤").strip()
        if clause:
            clauses.append(clause)
    return "; ".join(clauses)


def humanise(name: str) -> str:
    """A column or code name as words: ``age_band`` -> ``Age band``, ``race × gender`` kept."""
    words = str(name).replace("_", " ").strip()
    return words[:1].upper() + words[1:]

"""The audit's findings as records: who differs, by how much, with what interval and corrected p.

Each finding is a small frozen dataclass holding the numbers of one sentence; the sentence itself
is written by the report template (``templates/findings.html.j2``, one macro per ``kind``), so
the wording can change without touching the statistics, and a test can check the numbers.
:func:`audit_findings` reads the statistics tables in the order a reader needs them: the overall
error, the groups the stratified tests flag (or that none is flagged), the age-gate tests, the
minors each challenge age lets through, NIST's headline rates, and the challenge age each target
share of minors needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd


@dataclass(frozen=True)
class Estimate:
    """A number a sentence states with its 95 % interval (bootstrap for errors and differences)."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, row: pd.Series | Mapping[str, Any], column: str) -> Estimate:
        """``row[column]`` and its bounds, ``<column>_ci_low`` and ``<column>_ci_high`` (the tables' convention)."""
        return cls(float(row[column]), float(row[f"{column}_ci_low"]), float(row[f"{column}_ci_high"]))


@dataclass(frozen=True)
class Rate:
    """A share of ``n`` people with its Wilson interval; ``small``: a group below the minimum n."""

    value: float
    low: float
    high: float
    n: int
    small: bool = False

    @classmethod
    def of(cls, row: pd.Series | Mapping[str, Any], small: bool = False) -> Rate:
        """The rate of a gate-rate or NIST row (its columns ``rate``, ``ci_low``, ``ci_high`` and ``n``)."""
        return cls(float(row["rate"]), float(row["ci_low"]), float(row["ci_high"]), int(row["n"]), small)


@dataclass(frozen=True)
class NoFaces:
    """Nothing to audit: the predictions had no rows after the input checks."""

    kind: ClassVar[str] = "no_faces"


@dataclass(frozen=True)
class OverallError:
    """How many faces, their MAE with its interval, and the mean signed error (years)."""

    n: int
    mae: Estimate
    mean_signed_error: float
    kind: ClassVar[str] = "overall_error"


class VersusPeers:
    """A finding that compares a group of ``feature`` with people of the same age (and gender)."""

    feature: str

    @property
    def by_age_only(self) -> bool:
        """Comparing genders: strata of age alone (gender cannot be held fixed)."""
        return self.feature == "gender"


@dataclass(frozen=True)
class GroupDifference(VersusPeers):
    """A group whose absolute or signed error differs from same-age (and gender) peers after Holm.

    ``difference``: the stratum-standardised difference in years (group minus the others) with
    its bootstrap interval; ``mae``: the group's own MAE and interval, when known.
    """

    feature: str
    group: str
    outcome: str  # "absolute_error" or "signed_error"
    difference: Estimate
    p_corr: float
    family_size: int
    n_used: int
    n_others_used: int
    stratum_years: int
    mae: Estimate | None = None
    kind: ClassVar[str] = "group_difference"


@dataclass(frozen=True)
class NoGroupDifference(VersusPeers):
    """No group of ``feature`` has an MAE that differs from its peers' at ``alpha`` after Holm."""

    feature: str
    family_size: int
    alpha: float
    stratum_years: int
    kind: ClassVar[str] = "no_group_difference"


@dataclass(frozen=True)
class GateDifference(VersusPeers):
    """A group with more or fewer gate errors than same-age peers (a share difference, Holm-corrected)."""

    feature: str
    group: str
    measure: str  # "minors_accepted" or "adults_challenged" …
    challenge_age: float
    difference: Estimate
    p_corr: float
    family_size: int
    kind: ClassVar[str] = "gate_difference"


@dataclass(frozen=True)
class GroupRate:
    """One group's rate (with its Wilson interval, its n and whether it is below the minimum n)."""

    grouping: str
    group: str
    rate: Rate


@dataclass(frozen=True)
class MinorsAccepted:
    """The share of minors estimated at or above a challenge age, overall and in the worst group."""

    challenge_age: float
    overall: Rate
    worst: GroupRate | None
    kind: ClassVar[str] = "minors_accepted"


@dataclass(frozen=True)
class NistRate:
    """One of NIST's headline rates overall (Challenge-25 false positives, minors passing verification)."""

    parameters: str
    rate: Rate
    kind: ClassVar[str] = "nist_rate"


@dataclass(frozen=True)
class BufferNeed:
    """The challenge age that keeps minors accepted at or below a target share: overall and the worst group."""

    target: float
    overall_age: float
    overall_reached: bool
    group: str
    group_age: float
    group_reached: bool
    group_minors: int
    group_small: bool
    kind: ClassVar[str] = "buffer_need"


Finding = (
    NoFaces
    | OverallError
    | GroupDifference
    | NoGroupDifference
    | GateDifference
    | MinorsAccepted
    | NistRate
    | BufferNeed
)


def _group_findings(tests: pd.DataFrame, metrics: pd.DataFrame, alpha: float, stratum_years: int) -> list[Finding]:
    out: list[Finding] = []
    tested = tests[(tests["family"] == "group_vs_rest") & (tests["status"] == "ok")]
    for (feature, outcome), rows in tested.groupby(["feature", "outcome"], sort=False):
        flagged = rows[rows["p_corr"] < alpha].sort_values("difference", ascending=False)
        family_size = int(rows["holm_family_size"].iloc[0])
        if flagged.empty:
            if outcome == "absolute_error":
                out.append(NoGroupDifference(str(feature), family_size, alpha, stratum_years))
            continue
        for _, row in flagged.iterrows():
            own = metrics[(metrics["grouping"] == feature) & (metrics["group"] == row["group"])]
            out.append(
                GroupDifference(
                    feature=str(feature),
                    group=str(row["group"]),
                    outcome=str(outcome),
                    difference=Estimate.of(row, "difference"),
                    p_corr=float(row["p_corr"]),
                    family_size=family_size,
                    n_used=int(row["n_used"]),
                    n_others_used=int(row["n_b_used"]),
                    stratum_years=stratum_years,
                    mae=Estimate.of(own.iloc[0], "mae") if outcome == "absolute_error" and len(own) else None,
                )
            )
    gates = tests[(tests["family"] == "gate_vs_rest") & (tests["status"] == "ok") & (tests["p_corr"] < alpha)]
    for _, row in gates.iterrows():
        out.append(
            GateDifference(
                feature=str(row["feature"]),
                group=str(row["group"]),
                measure=str(row["measure"]),
                challenge_age=float(row["challenge_age"]),
                difference=Estimate.of(row, "difference"),
                p_corr=float(row["p_corr"]),
                family_size=int(row["holm_family_size"]),
            )
        )
    return out


def _gate_rate(row: pd.Series) -> Rate:
    """A row of ``age_gate_metrics`` as a rate: small for any status but ``ok``."""
    return Rate.of(row, small=row["status"] != "ok")


def _group_gate_rate(row: pd.Series) -> GroupRate:
    return GroupRate(str(row["grouping"]), str(row["group"]), _gate_rate(row))


def audit_findings(
    group_metrics: pd.DataFrame,
    significance_tests: pd.DataFrame,
    age_gate_metrics: pd.DataFrame,
    challenge_age_buffers: pd.DataFrame,
    *,
    alpha: float = 0.05,
    verification: pd.DataFrame | None = None,
    stratum_years: int = 5,
) -> list[Finding]:
    """The audit's findings, in reading order (see the module docstring).

    Args:
        group_metrics: the audit-band rows of ``group_metrics``.
        significance_tests, age_gate_metrics, challenge_age_buffers: the report pipeline's tables.
        alpha: significance level after Holm correction.
        verification: ``age_verification_metrics``; its overall Challenge-25 false-positive and
            verification minors-pass rates are stated.
        stratum_years: the width of the age strata the tests hold fixed (for the words).

    Returns:
        ``[NoFaces()]`` when nothing was audited, else the findings as records.
    """
    overall_rows = group_metrics[group_metrics["grouping"] == "overall"]
    if overall_rows.empty or int(overall_rows.iloc[0]["n"]) == 0:
        return [NoFaces()]
    overall = overall_rows.iloc[0]
    out: list[Finding] = [
        OverallError(int(overall["n"]), Estimate.of(overall, "mae"), float(overall["mean_signed_error"]))
    ]
    out += _group_findings(significance_tests, group_metrics, alpha, stratum_years)
    gates = age_gate_metrics[
        (age_gate_metrics["measure"] == "minors_accepted") & (age_gate_metrics["status"] != "no_cases")
    ]
    for tau in sorted(gates["challenge_age"].unique()):
        at = gates[gates["challenge_age"] == tau]
        overall_gate = at[at["grouping"] == "overall"]
        if overall_gate.empty:
            continue
        # Rank only single-feature groups (intersections are in the tables).
        ranked = at[(at["grouping"] != "overall") & ~at["grouping"].str.contains("×")]
        worst = ranked.sort_values("rate", ascending=False).head(1)
        worst_rate = _group_gate_rate(worst.iloc[0]) if len(worst) else None
        out.append(MinorsAccepted(float(tau), _gate_rate(overall_gate.iloc[0]), worst_rate))
    if verification is not None and not verification.empty:
        headline = verification[
            (verification["grouping"] == "overall")
            & (verification["status"] != "no_cases")
            & verification["metric"].isin(["challenge_false_positive", "verification_minors_pass"])
            & verification["rate"].notna()
        ]
        for _, row in headline.iterrows():
            out.append(NistRate(str(row["parameters"]), Rate.of(row, small=row["status"] == "small_group")))
    usable = challenge_age_buffers[challenge_age_buffers["status"] != "no_minors"]
    for target, rows in usable.groupby("target_rate"):
        overall_buffer = rows[rows["grouping"] == "overall"]
        ranked = rows[(rows["grouping"] != "overall") & rows["status"].isin(["ok", "small_group", "not_reached"])]
        worst = ranked.sort_values("buffer_challenge_age", ascending=False).head(1)
        if overall_buffer.empty or worst.empty:
            continue
        o, w = overall_buffer.iloc[0], worst.iloc[0]
        out.append(
            BufferNeed(
                target=float(target),
                overall_age=float(o["buffer_challenge_age"]),
                overall_reached=o["status"] != "not_reached",
                group=str(w["group"]),
                group_age=float(w["buffer_challenge_age"]),
                group_reached=w["status"] != "not_reached",
                group_minors=int(w["minors"]),
                group_small=w["status"] == "small_group",
            )
        )
    return out


@dataclass(frozen=True)
class SmallGroup:
    """A group below the minimum n: its estimates are too uncertain to rank."""

    grouping: str
    group: str
    n: int
    min_n: int


def small_groups(group_metrics: pd.DataFrame) -> list[SmallGroup]:
    """One record per group flagged ``small_group`` in ``group_metrics``."""
    small = group_metrics[group_metrics["small_group"].astype(bool)]
    return [SmallGroup(str(row.grouping), str(row.group), int(row.n), int(row.min_n)) for row in small.itertuples()]

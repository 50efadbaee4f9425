"""The self-contained HTML audit report: every table and figure in one file, findings in words.

No external resource (styles inline, figures as base64 PNG data URIs, no script), so the file
can be mailed, archived with an audit and opened offline.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #4477AA}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f1f4f8}
td:first-child,th:first-child{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:0.5em 1em}
.finding{background:#eef5ff;border-left:4px solid #4477AA;padding:0.5em 1em}
img{max-width:100%;border:1px solid #eee}details{margin:0.5em 0}summary{cursor:pointer;font-weight:600}
.scroll{overflow-x:auto}
"""


def image_data_uri(image: Image.Image) -> str:
    """PNG data URI of a PIL image, for an ``<img src=...>`` that needs no file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table_html(df: pd.DataFrame, *, digits: int = 3, collapsed: str | None = None) -> str:
    """An HTML table of ``df`` (numbers to ``digits`` significant places, empty for missing)."""
    if df is None or df.empty:
        body = "<p><em>No rows.</em></p>"
    else:
        formatted = df.copy()
        for column in formatted.columns:
            if pd.api.types.is_float_dtype(formatted[column]):
                formatted[column] = formatted[column].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}")
        body = '<div class="scroll">' + formatted.to_html(index=False, na_rep="", border=0, escape=True) + "</div>"
    if collapsed:
        return f"<details><summary>{html.escape(collapsed)} ({0 if df is None else len(df)} rows)</summary>{body}</details>"
    return body


@dataclass
class Section:
    """One section of the report: a heading, paragraphs (already HTML), tables and figures."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    figures: list[tuple[str, Image.Image]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, bool]] = field(default_factory=list)  # (caption, table, collapsed)


def _fmt_p(p: float) -> str:
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}" if p < 0.01 else f"p = {p:.3f}"


#: Columns a "no cases" row shows as words instead of an empty cell.
NO_CASES_COLUMNS = ("rate", "mae")


def show_no_cases(table: pd.DataFrame) -> pd.DataFrame:
    """A display copy in which rows with status ``no_cases`` read "no cases" in their value column.

    A group nobody is counted in has no rate: an empty cell could be misread, 0 % would be wrong.
    """
    if table is None or table.empty or "status" not in table.columns:
        return table
    shown = table.copy()
    empty = shown["status"].astype(str) == "no_cases"
    for column in NO_CASES_COLUMNS:
        if column in shown.columns and empty.any():
            shown[column] = shown[column].astype(object)
            shown.loc[empty, column] = "no cases"
    return shown


def _findings_by_test(significance_tests: pd.DataFrame, group_metrics: pd.DataFrame, alpha: float,
                      stratum_years: int) -> list[str]:
    out = []
    tested = significance_tests[(significance_tests["family"] == "group_vs_rest")
                                & (significance_tests["status"] == "ok")]
    like = f"other faces of the same age (within {stratum_years} years) and gender"
    for (feature, outcome), rows in tested.groupby(["feature", "outcome"], sort=False):
        flagged = rows[rows["p_corr"] < alpha].sort_values("difference", ascending=False)
        comparison = like if feature != "gender" else f"other faces of the same age (within {stratum_years} years)"
        family = f"Holm over {int(rows['holm_family_size'].iloc[0])} {feature} groups"
        if flagged.empty:
            if outcome == "absolute_error":
                out.append(f"By {feature}: no group's mean absolute error differs from that of {comparison} at "
                           f"α = {alpha} ({family}; stratified permutation tests).")
            continue
        for row in flagged.itertuples():
            n = f"n = {int(row.n_used)} vs {int(row.n_b_used)} in shared strata"
            ci = f"95% CI {row.difference_ci_low:+.2f} to {row.difference_ci_high:+.2f}"
            test = f"stratified permutation test, {family}, Holm-corrected {_fmt_p(row.p_corr)}"
            if outcome == "absolute_error":
                direction = "larger (worse)" if row.difference > 0 else "smaller (better)"
                metrics = group_metrics[(group_metrics["grouping"] == feature) & (group_metrics["group"] == row.group)]
                mae = (f"; its MAE is {metrics.iloc[0]['mae']:.2f} years (95% CI {metrics.iloc[0]['mae_ci_low']:.2f}–"
                       f"{metrics.iloc[0]['mae_ci_high']:.2f})") if len(metrics) else ""
                out.append(f"By {feature}: {row.group} faces have a mean absolute error {abs(row.difference):.2f} "
                           f"years {direction} than {comparison} ({ci}; {test}; {n}){mae}.")
            else:
                direction = "older" if row.difference > 0 else "younger"
                out.append(f"By {feature}: {row.group} faces are estimated {abs(row.difference):.2f} years {direction} "
                           f"than {comparison}, relative to their true age ({ci}; {test}; {n}).")
    gates = significance_tests[(significance_tests["family"] == "gate_vs_rest") & (significance_tests["status"] == "ok")
                               & (significance_tests["p_corr"] < alpha)]
    for row in gates.itertuples():
        what = ("minors estimated at or above" if row.measure == "minors_accepted"
                else "young adults (18–24) estimated below")
        out.append(f"Age gate at {row.challenge_age:g}: {row.group} has {100 * abs(row.difference):.1f} percentage "
                   f"points {'more' if row.difference > 0 else 'fewer'} {what} it than other people of the same age "
                   f"and {'gender' if row.feature != 'gender' else 'year'} (95% CI {100 * row.difference_ci_low:+.1f} "
                   f"to {100 * row.difference_ci_high:+.1f}; Holm over {int(row.holm_family_size)} gate tests, "
                   f"{_fmt_p(row.p_corr)}).")
    return out


def summary_of_findings(group_metrics: pd.DataFrame, significance_tests: pd.DataFrame,
                        age_gate_metrics: pd.DataFrame, challenge_age_buffers: pd.DataFrame,
                        *, alpha: float = 0.05, verification: pd.DataFrame | None = None,
                        stratum_years: int = 5) -> list[str]:
    """Plain-words findings (HTML-escaped sentences): who differs, by how much, CI, corrected p."""
    out = []
    overall_rows = group_metrics[group_metrics["grouping"] == "overall"]
    if overall_rows.empty or int(overall_rows.iloc[0]["n"]) == 0:
        return [html.escape("No faces to audit: the predictions table has no rows after the input checks, so no "
                            "metric, test or rate could be computed.")]
    overall = overall_rows.iloc[0]
    out.append(
        f"{int(overall['n'])} faces audited: mean absolute error {overall['mae']:.2f} years "
        f"(95% CI {overall['mae_ci_low']:.2f}–{overall['mae_ci_high']:.2f}); mean signed error "
        f"{overall['mean_signed_error']:+.2f} years (positive: estimates too old)."
    )
    out += _findings_by_test(significance_tests, group_metrics, alpha, stratum_years)
    gates = age_gate_metrics[(age_gate_metrics["measure"] == "minors_accepted") & (age_gate_metrics["status"] != "no_cases")]
    for tau in sorted(gates["challenge_age"].unique()):
        at = gates[gates["challenge_age"] == tau]
        overall_gate = at[at["grouping"] == "overall"]
        if overall_gate.empty:
            continue
        o = overall_gate.iloc[0]
        # Rank only single-feature groups large enough to rank (intersections are in the tables).
        ranked = at[(at["grouping"] != "overall") & ~at["grouping"].str.contains("×")]
        worst = ranked.sort_values("rate", ascending=False).head(1)
        sentence = (f"At challenge age {tau:g}, {100 * o['rate']:.1f}% of minors (95% CI {100 * o['ci_low']:.1f}–"
                    f"{100 * o['ci_high']:.1f}%, n = {o['n']}) are estimated at or above it")
        if len(worst):
            w = worst.iloc[0]
            sentence += (f"; the highest group rate is {w['group']} ({w['grouping']}): {100 * w['rate']:.1f}% "
                         f"(95% CI {100 * w['ci_low']:.1f}–{100 * w['ci_high']:.1f}%, n = {w['n']}"
                         + (", a small group" if w["status"] != "ok" else "") + ")")
        out.append(sentence + ".")
    if verification is not None and not verification.empty:
        overall_rates = verification[(verification["grouping"] == "overall") & (verification["status"] != "no_cases")
                                     & verification["metric"].isin(["challenge_false_positive",
                                                                    "verification_minors_pass"])
                                     & verification["rate"].notna()]
        for row in overall_rates.itertuples():
            out.append(f"NIST measure, {row.parameters}: {100 * row.rate:.1f}% (95% CI {100 * row.ci_low:.1f}–"
                       f"{100 * row.ci_high:.1f}%, n = {row.n}"
                       + (", a small group" if row.status == "small_group" else "") + ").")
    for target, rows in challenge_age_buffers[challenge_age_buffers["status"] != "no_minors"].groupby("target_rate"):
        overall_buffer = rows[rows["grouping"] == "overall"]
        ranked = rows[(rows["grouping"] != "overall") & rows["status"].isin(["ok", "small_group", "not_reached"])]
        worst = ranked.sort_values("buffer_challenge_age", ascending=False).head(1)
        if overall_buffer.empty or worst.empty:
            continue

        def needs(row) -> str:
            if row["status"] == "not_reached":
                return f"more than {row['buffer_challenge_age']:g} (no candidate up to it is enough)"
            return f"{row['buffer_challenge_age']:g}"

        w = worst.iloc[0]
        out.append(
            f"To accept at most {100 * target:g}% of minors, the challenge age must be at least "
            f"{needs(overall_buffer.iloc[0])} overall, and {needs(w)} for {w['group']} ({w['minors']} minors"
            + (", a small group" if w["status"] == "small_group" else "") + "), the group that needs the most."
        )
    return [html.escape(sentence) for sentence in out]


def min_n_warnings(group_metrics: pd.DataFrame) -> list[str]:
    """One line per group below the minimum n: its estimates are too uncertain to rank."""
    small = group_metrics[group_metrics["small_group"].astype(bool)]
    return [html.escape(f"{row.grouping} = {row.group}: n = {row.n} (< {row.min_n})") for row in small.itertuples()]


def not_computed(**tables: pd.DataFrame) -> pd.DataFrame:
    """One row per table × status that is not a result (``table``, ``status``, ``rows``, ``example``).

    Statuses that only qualify a result (``ok``, ``small_group``) are not listed; everything else
    (``no_cases``, ``too_small …``, ``too_few_groups …``, ``no_variation``, ``undefined``,
    ``no_minors``, ``k2 not computed …``) is, so the report says what could not be computed.
    """
    rows = []
    for name, table in tables.items():
        if table is None or table.empty or "status" not in table.columns:
            continue
        status = table["status"].astype(str)
        kind = status.str.split(r" \(|;", regex=True).str[0].str.strip()
        shown = ~kind.isin(["ok", "small_group", ""])
        for reason, part in table[shown].groupby(kind[shown], sort=True):
            label_columns = [c for c in ("grouping", "group", "feature", "race", "gender", "age_band", "metric")
                             if c in part.columns]
            example = " / ".join(str(part.iloc[0][c]) for c in label_columns if str(part.iloc[0][c]) not in ("", "nan"))
            rows.append({"table": name, "status": reason, "rows": len(part),
                         "example": f"{example}: {part.iloc[0]['status']}"})
    return pd.DataFrame(rows, columns=["table", "status", "rows", "example"])


def render_report(title: str, introduction: Sequence[str], findings: Sequence[str],
                  warnings: Sequence[str], sections: Sequence[Section]) -> str:
    """Assemble the HTML document (UTF-8, self-contained)."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No external resources: a favicon request would be the only network access, so say none.
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{p}</p>" for p in introduction]
    parts.append('<h2 id="findings">Summary of findings</h2><div class="finding"><ul>')
    parts += [f"<li>{f}</li>" for f in findings]
    parts.append("</ul></div>")
    if warnings:
        parts.append(f'<div class="note"><strong>Small groups</strong> (fewer rows than the minimum; treat their '
                     f'estimates as indicative only): <ul>{"".join(f"<li>{w}</li>" for w in warnings)}</ul></div>')
    parts.append("<nav><h2>Contents</h2><ol>" + "".join(
        f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections)) + "</ol></nav>")
    for i, section in enumerate(sections):
        parts.append(f'<h2 id="s{i}">{html.escape(section.title)}</h2>')
        parts += [f"<p>{p}</p>" for p in section.paragraphs]
        for caption, image in section.figures:
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="{image_data_uri(image)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for caption, table, collapsed in section.tables:
            if not collapsed:
                parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(table_html(table, collapsed=caption if collapsed else None))
    parts.append("</body></html>")
    return "\n".join(parts)

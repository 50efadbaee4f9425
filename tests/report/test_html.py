"""The audit report's words: findings with their numbers, small groups, escaping, a self-contained file."""

import html
import re

import pandas as pd

from dex_bias.report import tables as t
from dex_bias.report.context import render_audit_report
from dex_bias.report.findings import GroupDifference, NoFaces, OverallError, audit_findings, small_groups
from dex_bias.report.html import environment
from tests.report.conftest import audit_context
from tests.report.html_reading import list_items, section_text


def _audit_metrics(outputs):
    metrics = outputs["group_metrics"]
    return metrics[metrics.band_scheme == "audit"]


def test_findings_name_the_worse_group_with_size_ci_and_corrected_p(audit_outputs, audit_html):
    metrics, tests, gates = (
        _audit_metrics(audit_outputs),
        audit_outputs["significance_tests"],
        audit_outputs["age_gate_metrics"],
    )
    findings = list_items(audit_html, "findings")
    others = tests[
        (tests.family == "group_vs_rest") & (tests.group == "Others") & (tests.outcome == "absolute_error")
    ].iloc[0]
    sentence = next(f for f in findings if f.startswith("By race: Others faces have a mean absolute error"))
    assert f"{others.difference:.2f} years larger (worse)" in sentence
    assert f"{others.difference_ci_low:+.2f} to {others.difference_ci_high:+.2f}" in sentence
    assert "Holm-corrected p" in sentence
    overall = metrics[metrics.grouping == "overall"].iloc[0]
    assert f"mean absolute error {overall.mae:.2f} years" in findings[0]
    minors = gates[
        (gates.grouping == "overall") & (gates.measure == "minors_accepted") & (gates.challenge_age == 21)
    ].iloc[0]
    assert any(f"{100 * minors.rate:.1f}% of minors" in f and "challenge age 21" in f for f in findings)


def test_findings_are_records_whose_numbers_are_the_tables(audit_outputs, audit_report):
    metrics, tests = _audit_metrics(audit_outputs), audit_outputs["significance_tests"]
    overall = metrics[metrics.grouping == "overall"].iloc[0]
    first = audit_report.findings[0]
    assert isinstance(first, OverallError)
    assert (first.n, first.mae.value, first.mae.low, first.mae.high) == (
        overall.n,
        overall.mae,
        overall.mae_ci_low,
        overall.mae_ci_high,
    )
    flagged = tests[(tests.family == "group_vs_rest") & (tests.status == "ok") & (tests.p_corr < 0.05)]
    differences = [f for f in audit_report.findings if isinstance(f, GroupDifference)]
    assert sorted((f.feature, f.group, f.outcome) for f in differences) == sorted(
        zip(flagged.feature, flagged.group, flagged.outcome)
    )
    for finding in differences:
        row = flagged[(flagged.group == finding.group) & (flagged.outcome == finding.outcome)].iloc[0]
        assert (finding.difference.value, finding.difference.low, finding.difference.high, finding.p_corr) == (
            row.difference,
            row.difference_ci_low,
            row.difference_ci_high,
            row.p_corr,
        )


def test_no_faces_is_said_in_words(audit_outputs):
    empty = _audit_metrics(audit_outputs).iloc[:0]
    findings = audit_findings(
        empty,
        audit_outputs["significance_tests"],
        audit_outputs["age_gate_metrics"],
        audit_outputs["challenge_age_buffers"],
    )
    assert findings == [NoFaces()]
    sentence = environment().get_template("findings.html.j2").module.no_faces(findings[0])
    assert sentence.startswith("No faces to audit: the predictions table has no rows after the input checks")


def test_min_n_warnings_and_self_contained_document(audit_outputs):
    metrics = _audit_metrics(audit_outputs)
    small = metrics[~metrics.grouping.str.contains("×")].assign(small_group=metrics.n < 250)
    warnings = small_groups(small)
    assert len(warnings) == (small.n < 250).sum() > 0
    page = render_audit_report(
        audit_context(
            audit_outputs,
            group_metrics=pd.concat(
                [small.assign(band_scheme="audit"), audit_outputs["group_metrics"].query("band_scheme == 'article'")]
            ),
        )
    )
    note = re.search(r'<div class="note"><strong>Small groups</strong>(.*?)</div>', page, flags=re.S).group(1)
    assert note.count("<li>") == len(warnings)
    for warning in warnings:
        assert f"{warning.grouping} = {warning.group}: n = {warning.n} (&lt; {warning.min_n})" in note
    assert page.count("data:image/png;base64,") == 5
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    assert "<script" not in page and "@import" not in page and "url(" not in page


def test_names_in_the_data_are_escaped(audit_outputs):
    predictions = audit_outputs["report_predictions"].assign(model_name="<b>vendor</b>")
    page = render_audit_report(audit_context(audit_outputs, predictions=predictions))
    assert "of model(s) &lt;b&gt;vendor&lt;/b&gt;" in page and "<b>vendor</b>" not in page


def test_a_table_formats_and_escapes_and_an_empty_one_says_so():
    macros = environment().get_template("macros.html.j2").module
    columns = [t.Column("Group", "group"), t.Column("Value (years)", "value", "years")]
    empty = macros.data_table(t.display_table("empty", pd.DataFrame(columns=["group", "value"]), columns), "Empty")
    assert "No rows" in empty
    shown = macros.data_table(
        t.display_table("one", pd.DataFrame({"group": ["a<b"], "value": [0.123456]}), columns), "One <row>"
    )
    assert "a&lt;b" in shown and "One &lt;row&gt;" in shown and ">0.12<" in shown and "0.123456" not in shown


def test_every_section_of_the_audit_is_there(audit_html):
    contents = re.search(r"<nav.*?</nav>", audit_html, flags=re.S).group(0)
    for title in (
        "Errors by group",
        "Between-group tests",
        "Age verification",
        "Image quality",
        "The article&#39;s figures and tables",
        "Appendix B (the article&#39;s method)",
        "Explanations",
        "Gender head",
        "What could not be computed",
    ):
        assert title in contents, title
    assert "Appendix B: article features vs accuracy" in audit_html
    assert "not bias" in section_text(audit_html, "article")


def test_genders_are_compared_within_age_alone_and_said_so(audit_html):
    text = html.unescape(audit_html)
    assert "Error = predicted − true age, in years." in text
    gender = next(f for f in list_items(audit_html, "findings") if f.startswith("By gender:"))
    assert "than other faces of the same age (within 5 years) (" in gender and "and gender" not in gender

"""Tables as a person writes them: human headers, estimate and interval in one cell, words for codes,
sensible digits, long tables collapsed, and each table's CSV one click away (and equal to the table)."""

import re

import numpy as np
import pandas as pd
import pytest

from dex_bias.report import formats
from dex_bias.report import tables as t
from tests.report.html_reading import decode_csv, read_tables, table

CODES = (
    "no_cases",
    "small_group",
    "too_few_groups",
    "too_small",
    "no_minors",
    "not_reached",
    "no_variation",
    "_ci_low",
    "_ci_high",
    "minors_accepted",
    "absolute_error",
    "balanced_mae",
)


def _assert_same_table(shown: pd.DataFrame, source: pd.DataFrame) -> None:
    """``shown`` (read back from CSV) holds the same columns and values as ``source``."""
    assert list(shown.columns) == list(source.columns)
    assert len(shown) == len(source)
    for column in source.columns:
        expected, read = source[column].reset_index(drop=True), shown[column]
        if pd.api.types.is_numeric_dtype(expected) and not pd.api.types.is_bool_dtype(expected):
            np.testing.assert_allclose(
                read.to_numpy(float), expected.to_numpy(float), rtol=0, atol=0, equal_nan=True, err_msg=column
            )
        else:

            def text(values: pd.Series) -> list[str]:
                return values.astype(object).where(values.notna(), "").astype(str).tolist()

            assert text(read) == text(expected), column


def test_headers_are_words_with_units(audit_html, comparison_html):
    metrics = table(audit_html, "group_metrics")
    assert metrics.headers[0][:5] == ["Grouping", "Group", "n", "MAE (years)", "Median AE (years)"]
    assert "Mean signed error (years)" in metrics.headers[0] and "Within 5 years (%)" in metrics.headers[0]
    for page in (audit_html, comparison_html):
        for read in read_tables(page):
            for header in (h for row in read.headers for h in row):
                assert "_" not in header and not re.search(r"\bci\b", header), (read.block, header)


def test_an_estimate_and_its_interval_share_one_cell(audit_outputs, audit_html):
    metrics = audit_outputs["group_metrics"]
    white = metrics[(metrics.band_scheme == "audit") & (metrics.group == "White")].iloc[0]
    row = next(r for r in table(audit_html, "group_metrics").rows if r[1] == "White")
    assert row[3] == f"{white.mae:.2f} ({white.mae_ci_low:.2f}–{white.mae_ci_high:.2f})"
    assert row[5] == (
        f"{white.mean_signed_error:+.2f} ({white.mean_signed_error_ci_low:+.2f} to "
        f"{white.mean_signed_error_ci_high:+.2f})"
    )
    assert row[7] == (
        f"{100 * white.within_5:.1f} ({100 * white.within_5_ci_low:.1f}–{100 * white.within_5_ci_high:.1f})"
    )
    tests = audit_outputs["significance_tests"]
    gate = tests[(tests.family == "gate_vs_rest") & (tests.status == "ok")].iloc[0]
    shown = table(audit_html, "significance_tests_gate_vs_rest").rows[
        list(tests[tests.family == "gate_vs_rest"].index).index(gate.name)
    ]
    difference = 100 * gate[["difference", "difference_ci_low", "difference_ci_high"]].astype(float)
    assert f"{difference.iloc[0]:+.1f} ({difference.iloc[1]:+.1f} to {difference.iloc[2]:+.1f})" in shown


def test_status_codes_read_as_words_and_no_cases_is_never_zero(audit_outputs, audit_html, comparison_html):
    for page in (audit_html, comparison_html):
        for read in read_tables(page):
            for cell in (c for row in read.rows for c in row):
                assert not any(code in cell for code in CODES), (read.block, cell)
    rates = audit_outputs["age_verification_metrics"]
    nobody = rates[rates.status == "no_cases"]
    assert len(nobody) > 0
    shown = table(audit_html, "age_verification_metrics")
    rate_column = shown.headers[0].index("Rate (%)")
    for position in [list(rates.index).index(i) for i in nobody.index]:
        assert shown.rows[position][rate_column] == "no cases"
    assert shown.rows[list(rates.index).index(nobody.index[0])][-1] == "no cases"


def test_status_words():
    assert formats.status_words("ok") == ""
    assert formats.status_words("small_group") == "small group"
    assert formats.status_words("too_small (n=9 vs 16 rows, need 10)") == "too few faces (n=9 vs 16 rows, need 10)"
    assert formats.status_words("too_few_groups (0 with n >= 30)") == "too few groups (0 with n ≥ 30)"
    assert formats.status_words("k2 not computed (n=3)") == "k2 not computed (n=3)"
    assert (
        t.note_words("small group: n=6 < 30; balanced_mae: not defined")
        == "small group: n=6 < 30; balanced MAE: not defined"
    )
    assert (
        t.note_words("too_few_groups (0 with n >= 30 and a defined mae)")
        == "too few groups (0 with n ≥ 30 and a defined MAE)"
    )


def test_digits_and_intervals():
    assert formats.years(6.2871) == "6.29" and formats.percent(0.16935) == "16.9" and formats.points(-0.0532) == "-5.3"
    assert formats.interval(6.2871, 6.149, 6.4249) == "6.29 (6.15–6.42)"
    assert formats.interval(-0.09, -1.02, 1.01, formats.signed, with_sign=True) == "-0.09 (-1.02 to +1.01)"
    assert formats.interval(float("nan"), 1, 2) == formats.MISSING and formats.interval(1.0, None, 2) == "1.00"
    assert [formats.p_value(p) for p in (0.00002, 0.0042, 0.04, 0.04996, 0.05, 0.7312, 1.0)] == [
        "< 0.0001",
        "0.00420",
        "0.0400",
        "0.0499",
        "0.0500",
        "0.731",
        "1.00",
    ]
    assert formats.count(9778) == "9,778"


@pytest.mark.parametrize(
    "key, source",
    [
        (
            "group_metrics",
            lambda out: out["group_metrics"].query("band_scheme == 'audit' and ~grouping.str.contains('×')"),
        ),
        ("age_gate_metrics", lambda out: out["age_gate_metrics"]),
        ("significance_tests_pairwise", lambda out: out["significance_tests"].query("family == 'pairwise'")),
        ("group_spread", lambda out: out["group_spread"]),
    ],
)
def test_each_table_links_its_own_csv(audit_outputs, audit_html, key, source):
    read = table(audit_html, key)
    assert read.csv_href.startswith("data:text/csv;charset=utf-8;base64,")
    _assert_same_table(decode_csv(read.csv_href), source(audit_outputs))
    assert f'download="{key}.csv"' in audit_html


def test_comparison_tables_link_their_csv_too(comparison_outputs, comparison_html):
    _assert_same_table(
        decode_csv(table(comparison_html, "model_leaderboard").csv_href), comparison_outputs["leaderboard"]
    )
    _assert_same_table(decode_csv(table(comparison_html, "model_paired_tests").csv_href), comparison_outputs["paired"])
    for read in read_tables(comparison_html):
        if read.block.startswith("table-"):
            assert read.csv_href, read.block


def test_long_tables_start_collapsed_and_main_ones_open(audit_html):
    assert not table(audit_html, "group_metrics").in_details
    assert not table(audit_html, "significance_tests_group_vs_rest").in_details
    gates = table(audit_html, "age_gate_metrics")
    assert len(gates.rows) > t.COLLAPSE_ABOVE and gates.in_details
    for read in read_tables(audit_html):
        long = read.block.startswith("table-") and len(read.rows) > t.COLLAPSE_ABOVE
        if long and read.block != "table-group_metrics":
            assert read.in_details, read.block


def test_a_declaration_reads_as_a_spec_sheet(comparison_html):
    declarations = table(comparison_html, "model_declarations")
    assert declarations.headers[0] == ["", "trained", "vendor"]
    rows = {row[0]: row[1:] for row in declarations.rows}
    assert rows["Format"] == ["", "onnx"] and rows["Gender output"] == ["", "none"]

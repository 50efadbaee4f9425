import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dex_bias.report.html import Section, min_n_warnings, render_report, summary_of_findings, table_html
from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers
from dex_bias.stats.metrics import group_metrics
from dex_bias.stats.significance import significance_tests
from tests.stats.conftest import synthetic_predictions


@pytest.fixture(scope="module")
def tables():
    df = synthetic_predictions(1200, seed=41, race_bias={4: 6.0})
    return (group_metrics(df, n_boot=100, intersections=False), significance_tests(df, n_boot=100),
            age_gate_metrics(df), challenge_age_buffers(df))


def test_findings_name_the_worse_group_with_size_ci_and_corrected_p(tables):
    metrics, tests, gates, buffers = tables
    findings = summary_of_findings(metrics, tests, gates, buffers)
    others = tests[(tests.family == "group_vs_rest") & (tests.group == "Others")].iloc[0]
    sentence = next(f for f in findings if f.startswith("By race: Others"))
    assert f"{others.difference:.2f} years larger (worse)" in sentence
    assert f"{others.difference_ci_low:+.2f} to {others.difference_ci_high:+.2f}" in sentence
    assert "Holm-corrected p" in sentence
    overall = metrics[metrics.grouping == "overall"].iloc[0]
    assert f"mean absolute error {overall.mae:.2f} years" in findings[0]
    minors = gates[(gates.grouping == "overall") & (gates.measure == "minors_accepted") & (gates.challenge_age == 21)].iloc[0]
    assert any(f"{100 * minors.rate:.1f}% of minors" in f and "challenge age 21" in f for f in findings)


def test_min_n_warnings_and_self_contained_document(tables):
    metrics, tests, gates, buffers = tables
    small = metrics.assign(small_group=metrics.n < 250)
    warnings = min_n_warnings(small)
    assert len(warnings) == (metrics.n < 250).sum() > 0
    image = Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8))
    page = render_report("Audit <test>", ["intro"], ["finding"], warnings,
                         [Section("S", ["p"], figures=[("fig", image)], tables=[("t", metrics, False)])])
    assert "Audit &lt;test&gt;" in page and page.count("data:image/png;base64,") == 1
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    assert "<script" not in page


def test_table_html_formats_and_marks_empty():
    assert "No rows" in table_html(pd.DataFrame())
    html_table = table_html(pd.DataFrame({"group": ["a<b"], "value": [0.123456]}))
    assert "a&lt;b" in html_table and "0.123" in html_table and "0.123456" not in html_table

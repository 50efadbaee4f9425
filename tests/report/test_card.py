"""The report card: every value on it is the statistics tables' own, its flags are the Holm-corrected
stratified tests', its spread lines are ``group_spread``'s, and its whiskers sit where the numbers say."""

import math
from dataclasses import replace

import numpy as np
import pytest

from dex_bias.report import formats
from dex_bias.report.card import nice_ceiling, whisker
from tests.report.html_reading import card_tables


def _row(table, **where):
    rows = table
    for column, value in where.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_audit_card_values_equal_the_tables(audit_outputs, audit_report):
    ((_, card),) = audit_report.cards
    metrics = audit_outputs["group_metrics"].query("band_scheme == 'audit'")
    gates = audit_outputs["age_gate_metrics"]
    assert [c.label for c in card.columns] == [
        "MAE (years)",
        "Minors accepted at 18 (%)",
        "Minors accepted at 25 (%)",
        "Adults refused at 18 (%)",
    ]
    assert [(r.grouping, r.group) for r in card.rows] == [("overall", "all")] + [
        (f, g) for f in ("race", "gender") for g in metrics.loc[metrics.grouping == f, "group"]
    ]
    for row in card.rows:
        mae = _row(metrics, grouping=row.grouping, group=row.group)
        assert row.n == mae.n
        cell = row.cells[0]
        assert (cell.value, cell.low, cell.high) == (mae.mae, mae.mae_ci_low, mae.mae_ci_high)
        assert cell.text == f"{mae.mae:.2f} ({mae.mae_ci_low:.2f}–{mae.mae_ci_high:.2f})"
        for cell, (measure, age) in zip(
            row.cells[1:], [("minors_accepted", 18), ("minors_accepted", 25), ("adults_refused", 18)]
        ):
            rate = _row(gates, grouping=row.grouping, group=row.group, measure=measure, challenge_age=age)
            assert cell.n == rate.n
            if rate.n == 0:
                assert cell.text == "no cases" and cell.whisker is None
            else:
                assert (cell.value, cell.low, cell.high) == (rate.rate, rate.ci_low, rate.ci_high)
                assert cell.text == f"{100 * rate.rate:.1f} ({100 * rate.ci_low:.1f}–{100 * rate.ci_high:.1f})"


def test_the_rendered_card_shows_those_values(audit_report, audit_html):
    ((_, card),) = audit_report.cards
    group_table = card_tables(audit_html)[0]
    assert group_table.headers[0][:3] == ["Group", "n", "MAE (years) scale 0–" + card.columns[0].scale_text[2:]]
    assert len(group_table.rows) == len(card.rows)
    for shown, row in zip(group_table.rows, card.rows):
        assert shown[1] == formats.count(row.n)
        for text, cell in zip(shown[2:], row.cells):
            assert text.rstrip(" ▲▼") == cell.text


def test_flags_are_the_holm_corrected_stratified_tests(audit_outputs, audit_report):
    ((_, card),) = audit_report.cards
    tests = audit_outputs["significance_tests"]
    flagged = tests[
        (tests.status == "ok") & (tests.p_corr < 0.05) & tests.family.isin(["group_vs_rest", "gate_vs_rest"])
    ]
    assert sorted((f.family, f.group, f.outcome) for f in card.flagged) == sorted(
        zip(flagged.family, flagged.group, flagged.outcome)
    )
    assert all(f.p_corr.startswith("p") for f in card.flagged)
    mae_flags = {(r.grouping, r.group): r.cells[0].flag for r in card.rows}
    errors = tests[(tests.family == "group_vs_rest") & (tests.outcome == "absolute_error") & (tests.status == "ok")]
    for row in errors.itertuples():
        expected = None if not row.p_corr < 0.05 else "higher" if row.difference > 0 else "lower"
        assert mae_flags[(row.feature, row.group)] == expected, row.group
    assert mae_flags[("race", "Others")] == "higher"  # the planted group


def test_spread_lines_are_group_spread(audit_outputs, audit_report):
    ((_, card),) = audit_report.cards
    spread = audit_outputs["group_spread"]
    computed = spread[
        (spread.status == "ok")
        & spread.metric.isin(["mae", "balanced_mae", "challenge_false_positive", "verification_minors_pass"])
    ]
    assert sorted((line.feature, line.metric) for line in card.spread) == sorted(zip(computed.feature, computed.metric))
    for line in card.spread:
        row = _row(spread, feature=line.feature, metric=line.metric)
        if line.metric in ("mae", "balanced_mae"):
            assert line.max_minus_min == f"{row.max_minus_min:.2f}"
            assert line.max_minus_min_interval == f"({row.max_minus_min_ci_low:.2f}–{row.max_minus_min_ci_high:.2f})"
        assert line.gini == f"{row.gini:.3f}" and line.highest.startswith(str(row.max_group))
        assert line.left_out == (row.groups_left_out if isinstance(row.groups_left_out, str) else "")


def test_comparison_card_puts_each_models_values_side_by_side(comparison_outputs, comparison_report):
    card = comparison_report.card
    metrics, gates = comparison_outputs["metrics"], comparison_outputs["gates"]
    assert [c.key for c in card.columns] == ["mae:trained", "mae:vendor", "gate:trained", "gate:vendor"]
    for row in card.rows:
        for cell, column in zip(row.cells, card.columns):
            kind, model = column.key.split(":")
            if kind == "mae":
                source = _row(metrics, model=model, grouping=row.grouping, group=row.group)
                assert (cell.value, cell.low, cell.high) == (source.mae, source.mae_ci_low, source.mae_ci_high)
            else:
                source = _row(
                    gates,
                    model=model,
                    grouping=row.grouping,
                    group=row.group,
                    measure="minors_accepted",
                    challenge_age=25.0,
                )
                assert cell.n == source.n and (cell.text == "no cases" if source.n == 0 else cell.value == source.rate)
    assert card.columns[0].scale_max == card.columns[1].scale_max  # one scale for both models
    spread = comparison_outputs["spread"]
    for feature, _label, lines in card.spread_by_model():
        for model, line in zip(card.models, lines):
            if line is not None:
                row = _row(spread, model=model, feature=feature, metric=line.metric)
                np.testing.assert_equal((line.gini_value, line.value), (row.gini, row.max_minus_min))


def test_the_card_says_what_the_paired_tests_show(comparison_outputs, comparison_html):
    paired = comparison_outputs["paired"]
    overall = _row(paired, grouping="overall")
    card = comparison_html.split('id="card"')[1].split("</section>")[0]
    assert f"{overall.mean_difference:+.2f} years of absolute error" in card and overall.verdict in card


@pytest.mark.parametrize("value, end", [(0.54, 0.6), (6.8, 8.0), (7.72, 8.0), (0.0009, 0.001), (25, 25), (0, 1)])
def test_scales_end_at_a_round_number(value, end):
    assert math.isclose(nice_ceiling(value), end)


def test_a_whisker_sits_where_its_numbers_are():
    drawn = whisker(5.0, 4.0, 6.5, 10.0, 5.5, "MAE")
    assert (drawn.estimate, drawn.low, drawn.high, drawn.reference) == (50.0, 40.0, 65.0, 55.0)
    assert whisker(float("nan"), 1, 2, 10, None, "x") is None
    assert whisker(12.0, 11.0, 14.0, 10.0, None, "x").high == 100.0  # clipped to the scale


def test_with_an_outer_grouping_each_model_gets_its_own_card():
    """``report.outer_grouping: model_name``: one card per model, each from that model's rows only."""
    import pandas as pd

    from dex_bias.pipelines.report import nodes
    from dex_bias.report.context import AuditFigures, AuditTables, audit_report_context
    from dex_bias.report.figures import figure_to_image, gate_rates, message_figure
    from tests.report.conftest import report_parameters
    from tests.stats.conftest import synthetic_predictions

    first = synthetic_predictions(400, seed=1, race_bias={2: 6.0}).assign(model_name="alpha")
    second = synthetic_predictions(400, seed=2).assign(model_name="beta")
    second["image_id"] = "beta_" + second["image_id"]
    base = report_parameters()
    params = replace(base, outer_grouping="model_name", tests=replace(base.tests, pairwise=False))
    predictions, quarantine = nodes.prepare_report_input(pd.concat([first, second], ignore_index=True), params)
    gates, buffers = nodes.compute_age_gates(predictions, params)
    verification, spread = nodes.compute_age_verification(predictions, params)
    empty = pd.DataFrame()
    tables = AuditTables(
        predictions=predictions,
        quarantine=quarantine,
        landmarks=empty,
        group_metrics=nodes.compute_group_metrics(predictions, params),
        significance_tests=nodes.compute_significance_tests(predictions, params),
        age_gate_metrics=gates,
        challenge_age_buffers=buffers,
        age_verification_metrics=verification,
        group_spread=spread,
        image_quality_metrics=empty,
        paper_normality_table=empty,
        paper_correlation_table=empty,
        region_weight_correlations=empty,
    )
    blank = figure_to_image(message_figure("-", "-"))
    report = audit_report_context(tables, AuditFigures(*[blank] * 5), params)
    assert [label for label, _ in report.cards] == ["alpha", "beta"]
    metrics = tables.group_metrics.query("band_scheme == 'audit'")
    for label, card in report.cards:
        for row in card.rows:
            source = _row(metrics, model_name=label, grouping=row.grouping, group=row.group)
            assert (row.n, row.cells[0].value) == (source.n, source.mae)
    alpha, beta = (dict(((r.grouping, r.group), r.cells[0].flag) for r in card.rows) for _, card in report.cards)
    assert alpha[("race", "Asian")] == "higher" and beta[("race", "Asian")] is None
    # The figures draw each model's groups as their own bars (the gate figure once failed on the
    # repeated group labels).
    drawn = nodes.draw_figures(predictions, gates, empty, params)
    assert len(drawn) == 5
    gate_figure = gate_rates(gates, "race", outer="model_name", confidence=params.confidence)
    bars = [t.get_text() for t in gate_figure.axes[0].get_xticklabels()]
    assert {"alpha · White", "beta · White", "alpha · all"} <= set(bars)

"""Degenerate inputs inside the statistics: zero rows, one group only, every estimate equal, no
minors. Each gives a status that says what could not be computed, never a KeyError or a 0 %."""

import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.engine import Estimation
from dex_bias.stats.gates import age_gate_metrics, challenge_age_buffers
from dex_bias.stats.gender import gender_metrics
from dex_bias.stats.metrics import group_metrics
from dex_bias.stats.paper import paper_normality_table
from dex_bias.stats.quality import quality_metrics
from dex_bias.stats.significance import significance_tests
from dex_bias.stats.verification import age_verification_metrics, group_spread
from tests.stats.conftest import synthetic_landmarks, synthetic_predictions, verification_settings

BASE = synthetic_predictions(400, seed=8)
CASES = {
    "zero_rows": BASE.iloc[:0],
    "one_group": BASE.assign(race=2, gender=0),
    "all_equal": BASE.assign(predicted_age=30.0),
    "no_minors": BASE[BASE.age >= 18],
}


def _everything(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "group_metrics": group_metrics(df, estimation=Estimation(n_boot=20)),
        "significance_tests": significance_tests(df, n_perm=99, estimation=Estimation(min_n=10, n_boot=20)),
        "age_gate_metrics": age_gate_metrics(df),
        "challenge_age_buffers": challenge_age_buffers(df),
        "age_verification_metrics": age_verification_metrics(df, verification_settings()),
        "group_spread": group_spread(df, verification_settings(), estimation=Estimation(n_boot=20)),
        "paper_normality_table": paper_normality_table(df),
        "image_quality_metrics": quality_metrics(
            df, synthetic_landmarks(df.image_id), estimation=Estimation(n_boot=20)
        ),
        "gender_metrics": gender_metrics(df.assign(prob_female=0.7)) if len(df) else gender_metrics(df),
    }


@pytest.mark.parametrize("case", CASES)
def test_every_table_is_made_with_a_status_on_every_row(case):
    tables = _everything(CASES[case])
    for name, table in tables.items():
        if "status" in table.columns and len(table):
            assert table["status"].notna().all() and (table["status"].astype(str) != "").all(), name


def test_zero_rows_give_no_cases_not_zeros():
    tables = _everything(CASES["zero_rows"])
    overall = tables["group_metrics"].iloc[0]
    assert overall.n == 0 and overall.status == "no_cases" and np.isnan(overall.mae)
    assert (tables["age_gate_metrics"].status == "no_cases").all() and tables["age_gate_metrics"].rate.isna().all()
    assert (tables["significance_tests"].status.str.startswith("too_few_groups")).all()
    assert (tables["paper_normality_table"].status == "no cases").all()
    assert tables["image_quality_metrics"].empty and tables["gender_metrics"].empty


def test_one_group_only_cannot_be_compared_and_says_so():
    tables = _everything(CASES["one_group"])
    tests = tables["significance_tests"]
    assert len(tests) and (tests.status.str.startswith("too_few_groups")).all() and tests.p_corr.isna().all()
    spread = tables["group_spread"]
    assert spread.status.str.startswith("too_few_groups").all()


def test_every_estimate_equal_has_no_variation_where_that_matters():
    tables = _everything(CASES["all_equal"])
    tests = tables["significance_tests"]
    gates = tests[tests.family == "gate_vs_rest"]
    # Estimates of 30 accept every minor at 18, 21 and 25: no gate outcome varies.
    assert len(gates) and gates.status.str.startswith(("no_variation", "too_small")).all()
    errors = tests[(tests.family == "group_vs_rest") & (tests.outcome == "absolute_error")]
    assert (errors.status == "ok").any()  # the error still varies with true age
    normality = tables["paper_normality_table"]
    assert normality.loc[normality.n >= 8, "status"].str.contains("k2 not computed").all()


def test_no_minors_reads_no_cases_and_no_buffer():
    tables = _everything(CASES["no_minors"])
    gates = tables["age_gate_metrics"]
    minors = gates[gates.measure.isin(["minors_accepted", "teens_accepted"])]
    assert (minors.status == "no_cases").all() and minors.rate.isna().all()
    buffers = tables["challenge_age_buffers"]
    assert (buffers.status == "no_minors").all() and buffers.buffer_challenge_age.isna().all()
    verification = tables["age_verification_metrics"]
    assert (verification[verification.metric.str.startswith("verification")].status == "undefined").all()
    tests = tables["significance_tests"]
    minors_tests = tests[(tests.family == "gate_vs_rest") & (tests.measure == "minors_accepted")]
    assert len(minors_tests) and not (minors_tests.status == "ok").any()

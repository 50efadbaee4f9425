import numpy as np
import pandas as pd
import pytest

from dex_bias.stats.contract import PredictionsContractError, prepare_predictions


def test_labels_parsed_from_both_utkface_id_styles():
    df = pd.DataFrame(
        {"image_id": ["25_1_3_20170116174525125.jpg", "crop/7_0_2_20170109.jpg.chip.jpg"], "predicted_age": ["30.5", 6]}
    )
    valid, quarantine = prepare_predictions(df)
    assert quarantine.empty
    assert valid[["age", "gender", "race"]].values.tolist() == [[25, 1, 3], [7, 0, 2]]
    assert valid["predicted_age"].tolist() == [30.5, 6.0]


def test_table_labels_win_over_the_id():
    df = pd.DataFrame({"image_id": ["vendor_0001.png"], "predicted_age": [20], "age": [19], "gender": [1], "race": [0]})
    valid, _ = prepare_predictions(df)
    assert valid.loc[0, "age"] == 19


def test_missing_column_names_it():
    with pytest.raises(PredictionsContractError, match=r"missing column\(s\) \['predicted_age'\]"):
        prepare_predictions(pd.DataFrame({"image_id": ["1_0_0_1.jpg"], "age_estimate": [3]}), source="my.csv")


@pytest.mark.parametrize(
    "bad_id, bad_value, reason",
    [
        ("not_a_face.png", 20, "unparseable_id"),
        (None, "twenty", "non_numeric_prediction"),
        (None, "nan", "non_numeric_prediction"),
        (None, -3, "negative_prediction"),
        ("40_7_0_2017.jpg", 20, "unparseable_id"),  # gender 7 does not parse
    ],
)
def test_each_bad_row_kind_lists_first_rows_and_count(bad_id, bad_value, reason):
    ids = [f"{20 + i}_0_1_2017{i:04d}.jpg" for i in range(12)]
    values: list = [25.0] * 12
    bad_rows = [2, 4, 5, 7, 8, 9, 11]  # 0-based: 7 rows, more than the 5 listed
    for row in bad_rows:
        if bad_id is not None:
            ids[row] = f"{row}_{bad_id}"
        values[row] = bad_value
    df = pd.DataFrame({"image_id": ids, "predicted_age": values})
    with pytest.raises(PredictionsContractError) as error:
        prepare_predictions(df, source="data/01_raw/external_predictions.csv")
    message = str(error.value)
    assert "data/01_raw/external_predictions.csv" in message
    assert f"{reason}: 7 rows" in message
    for row in bad_rows[:5]:
        assert f"row {row + 1} (" in message
    assert f"row {bad_rows[5] + 1} (" not in message and "and 2 more" in message
    valid, quarantine = prepare_predictions(df, allow_quarantine=True)
    assert len(valid) + quarantine["row"].nunique() == len(df)
    assert set(quarantine["reason"]) == {reason} and sorted(quarantine["row"]) == [r + 1 for r in bad_rows]


def test_duplicates_set_aside_every_copy():
    df = pd.DataFrame({"image_id": ["1_0_0_1.jpg", "2_0_0_2.jpg", "1_0_0_1.jpg"], "predicted_age": [1, 2, 3]})
    with pytest.raises(PredictionsContractError, match=r"duplicate_id: 2 rows.*row 1 .*row 3 "):
        prepare_predictions(df)
    valid, quarantine = prepare_predictions(df, allow_quarantine=True)
    assert valid["image_id"].tolist() == ["2_0_0_2.jpg"] and quarantine["row"].tolist() == [1, 3]


# --- plausible estimates, empty cells and empty tables (issue 14) ------------------------------


def _vendor(values: list) -> pd.DataFrame:
    ids = [f"{20 + i}_0_1_2017{i:04d}.jpg" for i in range(len(values))]
    return pd.DataFrame({"image_id": ids, "predicted_age": pd.Series(values, dtype=object)})


@pytest.mark.parametrize(
    "value, reason, named",
    [
        (1e9, "implausible_prediction", "1000000000.0 is outside the plausible range 0-120 years"),
        (1e6, "implausible_prediction", "1000000.0 is outside the plausible range 0-120 years"),
        (120.5, "implausible_prediction", "120.5 is outside"),
        (float("nan"), "non_numeric_prediction", "predicted_age is NaN, not a finite number"),
        (float("inf"), "non_numeric_prediction", "predicted_age is inf, not a finite number"),
        ("", "non_numeric_prediction", "predicted_age is an empty cell"),
        (None, "non_numeric_prediction", "predicted_age is an empty cell"),
        ("1e9", "implausible_prediction", "predicted_age 1e9 is outside"),
        ("n/a", "non_numeric_prediction", "predicted_age is 'n/a'"),
        (-3.0, "negative_prediction", "predicted_age -3.0 is below 0"),
    ],
)
def test_implausible_or_missing_estimates_are_refused_with_the_value_named(value, reason, named):
    df = _vendor([30.0, value, 40.0])
    with pytest.raises(PredictionsContractError) as error:
        prepare_predictions(df, source="vendor.csv")
    message = str(error.value)
    assert f"{reason}: 1 rows" in message and "row 2 (" in message and named in message
    assert ": nan" not in message.lower()  # the value is named, never a bare nan
    valid, quarantine = prepare_predictions(df, allow_quarantine=True)
    assert valid["predicted_age"].tolist() == [30.0, 40.0]
    assert quarantine[["row", "reason"]].values.tolist() == [[2, reason]]
    assert named in quarantine.loc[0, "detail"]


def test_minus_zero_is_an_age_of_zero_and_the_range_is_a_parameter():
    valid, quarantine = prepare_predictions(_vendor([-0.0, "-0", 0.0]))
    assert quarantine.empty and valid["predicted_age"].tolist() == [0.0, 0.0, 0.0]
    assert not np.signbit(valid["predicted_age"]).any()  # no "-0" further on
    with pytest.raises(PredictionsContractError, match=r"outside the plausible range 1-100 years \(my.range\)"):
        prepare_predictions(_vendor([50.0, 0.5]), age_range=(1, 100), age_range_setting="my.range")
    with pytest.raises(ValueError, match="low < high"):
        prepare_predictions(_vendor([50.0]), age_range=(100, 10))


def test_an_implausible_estimate_never_reaches_a_statistic():
    """1e9 once made the normality table allocate a billion counts: the contract stops it first."""
    from dex_bias.stats.paper import paper_normality_table

    df = _vendor([25.0, 1e9, 31.0, 64.0])
    valid, _ = prepare_predictions(df, allow_quarantine=True)
    assert valid["predicted_age"].max() <= 120
    assert paper_normality_table(valid)["n"].sum() == 3


def test_an_empty_id_cell_is_named_as_such():
    df = pd.DataFrame({"image_id": ["25_1_3_20170116174525125.jpg", "", None], "predicted_age": [20.0, 21.0, 22.0]})
    valid, quarantine = prepare_predictions(df, allow_quarantine=True)
    assert len(valid) == 1
    assert quarantine["reason"].tolist() == ["unparseable_id", "unparseable_id"]  # not duplicates of ""
    assert (quarantine["detail"] == "image_id is an empty cell").all()


def test_a_table_without_rows_or_without_a_valid_row_is_refused_by_name():
    header_only = pd.DataFrame({"image_id": pd.Series(dtype=str), "predicted_age": pd.Series(dtype=str)})
    with pytest.raises(PredictionsContractError, match=r"vendor\.csv: no rows to audit .*'image_id', 'predicted_age'"):
        prepare_predictions(header_only, source="vendor.csv")
    with pytest.raises(PredictionsContractError, match=r"no rows to audit"):
        prepare_predictions(header_only, source="vendor.csv", allow_quarantine=True)
    all_bad = _vendor(["x", 1e9])
    with pytest.raises(PredictionsContractError, match=r"(?s)2 of 2 rows cannot be audited.*No row is left to audit"):
        prepare_predictions(all_bad, source="vendor.csv", allow_quarantine=True)

import pandas as pd
import pytest

from dex_bias.stats.contract import PredictionsContractError, prepare_predictions


def test_labels_parsed_from_both_utkface_id_styles():
    df = pd.DataFrame({"image_id": ["25_1_3_20170116174525125.jpg", "crop/7_0_2_20170109.jpg.chip.jpg"],
                       "predicted_age": ["30.5", 6]})
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


@pytest.mark.parametrize("bad_id, bad_value, reason", [
    ("not_a_face.png", 20, "unparseable_id"),
    (None, "twenty", "non_numeric_prediction"),
    (None, "nan", "non_numeric_prediction"),
    (None, -3, "negative_prediction"),
    ("40_7_0_2017.jpg", 20, "unparseable_id"),  # gender 7 does not parse
])
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

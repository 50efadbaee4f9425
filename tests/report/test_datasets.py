import pandas as pd
import pytest
from kedro.io import AbstractDataset

from dex_bias.report.datasets import SourcedCSVDataset


def test_optional_dataset_is_empty_when_absent_and_the_data_when_present(tmp_path):
    config = {
        "type": "dex_bias.report.datasets.OptionalDataset",
        "columns": ["image_id", "weight"],
        "dataset": {"type": "pandas.ParquetDataset", "filepath": str(tmp_path / "a.parquet"), "versioned": True},
    }
    absent = AbstractDataset.from_config("region_attributions", config)
    assert absent.exists()  # so a run's upstream check lets the report run
    loaded = absent.load()
    assert loaded.empty and list(loaded.columns) == ["image_id", "weight"]
    inner = AbstractDataset.from_config("inner", dict(config["dataset"]))
    inner.save(pd.DataFrame({"image_id": ["x"], "weight": [0.5]}))
    present = AbstractDataset.from_config("region_attributions", config)
    assert present.load()["weight"].tolist() == [0.5]


def test_optional_dataset_saves_through_with_the_run_stamp(tmp_path):
    config = {
        "type": "dex_bias.report.datasets.OptionalDataset",
        "columns": ["image_id"],
        "versioned": True,
        "dataset": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "b.csv")},
    }
    writer = AbstractDataset.from_config("attributions", config, save_version="2026-01-02T03.04.05.678Z")
    writer.save(pd.DataFrame({"image_id": ["y"]}))
    assert (tmp_path / "b.csv" / "2026-01-02T03.04.05.678Z" / "b.csv").exists()
    assert AbstractDataset.from_config("attributions", config).load()["image_id"].tolist() == ["y"]


def test_sourced_csv_names_its_file(tmp_path):
    path = tmp_path / "vendor.csv"
    pd.DataFrame({"image_id": ["1_0_0_1.jpg"], "predicted_age": [3]}).to_csv(path, index=False)
    assert SourcedCSVDataset(filepath=str(path)).load().attrs["source"] == str(path)


def test_sourced_csv_keeps_cells_as_written_so_errors_can_name_them(tmp_path):
    path = tmp_path / "vendor.csv"
    path.write_text("image_id,predicted_age\n25_1_3_1.jpg,\n26_1_3_2.jpg,n/a\n27_1_3_3.jpg,NaN\n")
    loaded = SourcedCSVDataset(filepath=str(path)).load()
    assert loaded["predicted_age"].tolist() == ["", "n/a", "NaN"]


def test_a_zero_byte_csv_names_the_file_and_what_it_should_hold(tmp_path):
    from kedro.io.core import DatasetError

    path = tmp_path / "external_predictions.csv"
    path.write_bytes(b"")
    with pytest.raises(DatasetError) as error:
        SourcedCSVDataset(filepath=str(path)).load()
    message = str(error.value)
    assert str(path) in message and "is empty" in message and "image_id,predicted_age" in message
    assert "No columns to parse" not in message

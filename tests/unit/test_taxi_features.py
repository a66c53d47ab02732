"""Reading trip files and building the training features, across file vintages."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.taxi import training
from services.core.errors import InvalidInput


def trips(minutes: list[float], unit: str = "us", id_type: str = "int64") -> pd.DataFrame:
    """Green-taxi-like rows that start at noon and last `minutes`."""
    pickup = pd.Series(pd.Timestamp("2023-01-05 12:00")).repeat(len(minutes)).reset_index(
        drop=True).astype(f"datetime64[{unit}]")
    dropoff = pickup + pd.to_timedelta(minutes, unit="min")
    return pd.DataFrame({
        "lpep_pickup_datetime": pickup,
        "lpep_dropoff_datetime": dropoff.astype(f"datetime64[{unit}]"),
        "PULocationID": np.arange(len(minutes), dtype=id_type) + 74,
        "DOLocationID": np.full(len(minutes), 166, dtype=id_type),
        "trip_distance": np.linspace(0.5, 5.0, len(minutes)),
    })


def read_local(tmp_path, frame: pd.DataFrame, name: str = "trips.parquet") -> pd.DataFrame:
    path = tmp_path / name
    frame.to_parquet(path)
    return training.read_dataframe(path)


def test_duration_is_in_minutes_and_the_filter_keeps_one_to_sixty_inclusive(tmp_path):
    kept = read_local(tmp_path, trips([0.0, 0.99, 1.0, 12.5, 60.0, 60.02, 600.0]))
    assert kept["duration"].tolist() == pytest.approx([1.0, 12.5, 60.0])


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_any_timestamp_unit_gives_the_same_durations(tmp_path, unit):
    kept = read_local(tmp_path, trips([2.0, 30.0, 45.5], unit=unit))
    assert kept["duration"].tolist() == pytest.approx([2.0, 30.0, 45.5])


def test_location_ids_become_the_same_strings_whatever_their_integer_width(tmp_path):
    wide = read_local(tmp_path, trips([5.0, 6.0], id_type="int64"), "wide.parquet")
    narrow = read_local(tmp_path, trips([5.0, 6.0], id_type="int32"), "narrow.parquet")
    assert wide["PULocationID"].tolist() == narrow["PULocationID"].tolist() == ["74", "75"]
    assert narrow["DOLocationID"].tolist() == ["166", "166"]


def test_a_file_written_with_nanosecond_timestamps_by_pyarrow_reads(tmp_path):
    frame = trips([3.0, 70.0])
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(pa.schema([
        ("lpep_pickup_datetime", pa.timestamp("ns")), ("lpep_dropoff_datetime", pa.timestamp("ns")),
        ("PULocationID", pa.int32()), ("DOLocationID", pa.int32()), ("trip_distance", pa.float64()),
    ]))
    pq.write_table(table, tmp_path / "ns.parquet")
    kept = training.read_dataframe(tmp_path / "ns.parquet")
    assert kept["duration"].tolist() == pytest.approx([3.0])


def test_yellow_taxi_time_columns_are_understood(tmp_path):
    yellow = trips([8.0]).rename(columns={"lpep_pickup_datetime": "tpep_pickup_datetime",
                                          "lpep_dropoff_datetime": "tpep_dropoff_datetime"})
    assert read_local(tmp_path, yellow)["duration"].tolist() == pytest.approx([8.0])


def test_a_missing_file_is_named_in_the_error(tmp_path):
    with pytest.raises(InvalidInput, match="no such file: .*nowhere.parquet"):
        training.read_dataframe(tmp_path / "nowhere.parquet")


def test_a_file_that_is_not_parquet_is_rejected_clearly(tmp_path):
    path = tmp_path / "notes.parquet"
    path.write_text("not a parquet file")
    with pytest.raises(InvalidInput, match="notes.parquet is not a readable parquet file"):
        training.read_dataframe(path)


def test_a_parquet_file_without_trip_columns_is_rejected_naming_them(tmp_path):
    path = tmp_path / "other.parquet"
    trips([5.0]).drop(columns=["trip_distance"]).to_parquet(path)
    with pytest.raises(InvalidInput, match="no column trip_distance"):
        training.read_dataframe(path)


def test_add_features_vectorises_the_zone_pair_and_the_distance(tmp_path):
    train = read_local(tmp_path, trips([5.0, 10.0, 15.0]), "train.parquet")
    val = read_local(tmp_path, trips([7.0, 9.0]), "val.parquet").assign(PULocationID=["74", "1"])
    X_train, X_val, y_train, y_val, dv = training.add_features(train, val)
    names = list(dv.get_feature_names_out())
    assert names == ["PU_DO=74_166", "PU_DO=75_166", "PU_DO=76_166", "trip_distance"]
    assert X_train.shape == (3, 4) and X_val.shape == (2, 4)
    assert X_train[0, 0] == 1.0 and X_train[0, 3] == pytest.approx(0.5)
    # a pair never seen in training has no column: only its distance remains
    assert X_val[1, :3].sum() == 0.0
    assert y_train.tolist() == pytest.approx([5.0, 10.0, 15.0])
    assert y_val.tolist() == pytest.approx([7.0, 9.0])
    assert "PU_DO" not in train.columns  # the inputs are left as they were


def test_the_report_is_markdown_with_a_date_and_rmse_table_not_indented():
    report = training.build_report(5.2049, date(2023, 3, 1), {"MLflow run": "abc"})
    lines = report.splitlines()
    assert lines[0] == "# RMSE Report"
    assert "| 2023-03-01 | 5.20 |" in lines
    assert "- MLflow run: abc" in lines
    assert not any(line.startswith((" ", "\t")) for line in lines)


@pytest.mark.parametrize(("path", "expected"), [
    ("https://d37ci6vzurychx.cloudfront.net/trip-data/green_tripdata_2023-01.parquet", True),
    ("http://127.0.0.1:8080/a.parquet", True),
    ("data/green_tripdata_2023-01.parquet", False),
    ("/abs/green.parquet", False),
])
def test_urls_are_told_apart_from_local_paths(path, expected):
    assert training.is_url(path) is expected

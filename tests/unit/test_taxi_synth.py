"""The synthetic green taxi files: the real schema, and the shapes the training flow relies on."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from flows.taxi import synth
from services.core.errors import InvalidInput

ROWS = 20_000


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    return synth.generate_month("2023-01", ROWS, seed=7)


def duration_minutes(frame: pd.DataFrame) -> pd.Series:
    return (frame["lpep_dropoff_datetime"] - frame["lpep_pickup_datetime"]).dt.total_seconds() / 60


def test_columns_come_in_the_tlc_order_with_the_tlc_types(january):
    assert list(january.columns) == synth.COLUMNS
    assert len(january.columns) == 20
    dtypes = january.dtypes.astype(str).to_dict()
    assert dtypes["VendorID"] == dtypes["PULocationID"] == dtypes["DOLocationID"] == "int64"
    assert dtypes["lpep_pickup_datetime"] == dtypes["lpep_dropoff_datetime"] == "datetime64[us]"
    assert january["lpep_pickup_datetime"].dt.tz is None
    assert pd.api.types.is_string_dtype(january["store_and_fwd_flag"])
    floats = ["RatecodeID", "passenger_count", "trip_distance", "fare_amount", "extra", "mta_tax",
              "tip_amount", "tolls_amount", "ehail_fee", "improvement_surcharge", "total_amount",
              "payment_type", "trip_type", "congestion_surcharge"]
    assert {dtypes[name] for name in floats} == {"float64"}


def test_values_stay_in_the_tlc_code_lists(january):
    assert set(january["VendorID"]) == {1, 2}
    assert 0.85 < (january["VendorID"] == 2).mean() < 0.91
    assert january["PULocationID"].between(1, 265).all()
    assert january["DOLocationID"].between(1, 265).all()
    assert set(january["store_and_fwd_flag"].dropna()) <= {"N", "Y"}
    assert set(january["RatecodeID"].dropna()) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 99.0}
    assert (january["RatecodeID"].dropna() == 1.0).mean() > 0.94
    assert set(january["payment_type"].dropna()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert set(january["trip_type"].dropna()) <= {1.0, 2.0}
    assert set(january["congestion_surcharge"].dropna()) == {0.0, 2.75}
    assert january["ehail_fee"].isna().all()
    assert (january["improvement_surcharge"] == 1.0).all()


def test_the_same_seed_gives_the_same_month_and_another_seed_does_not():
    first = synth.generate_month("2023-02", 3_000, seed=11)
    pd.testing.assert_frame_equal(first, synth.generate_month("2023-02", 3_000, seed=11))
    other = synth.generate_month("2023-02", 3_000, seed=12)
    assert not first["trip_distance"].equals(other["trip_distance"])


def test_progress_is_reported_to_the_end_without_changing_the_data():
    rows = synth.CHUNK_ROWS + 500
    seen: list[tuple[int, int]] = []
    watched = synth.generate_month("2023-03", rows, seed=3, progress=lambda *call: seen.append(call))
    assert len(seen) == 2
    assert seen[-1] == (rows, rows)
    pd.testing.assert_frame_equal(watched, synth.generate_month("2023-03", rows, seed=3))


def test_the_duration_filter_removes_three_to_four_percent(january):
    minutes = duration_minutes(january)
    outside = ~minutes.between(1, 60)
    assert 0.025 < outside.mean() < 0.045
    assert (minutes < 1).any() and (minutes > 120).any()  # zero-length trips and running meters
    assert 11 < minutes[~outside].median() < 14


def test_missing_dispatch_values_are_null_together(january):
    together = ["RatecodeID", "passenger_count", "payment_type", "congestion_surcharge",
                "store_and_fwd_flag"]
    masks = january[together].isna()
    assert masks.eq(masks["RatecodeID"], axis=0).all().all()
    assert 0.025 < masks["RatecodeID"].mean() < 0.045
    assert january.drop(columns=[*together, "trip_type", "ehail_fee"]).notna().all().all()


def test_trip_distance_is_log_normal_like_with_zeros_and_absurd_outliers(january):
    distance = january["trip_distance"]
    assert 1.5 < distance.median() < 2.1
    assert 0.8 < distance.quantile(0.25) < 1.3
    assert 2.6 < distance.quantile(0.75) < 3.6
    assert 0.01 <= (distance == 0).mean() <= 0.02
    assert 1 <= (distance > 100).sum() <= 5
    assert distance.max() > 100_000


def test_pickups_concentrate_in_a_few_zones_and_dropoffs_spread(january):
    pickups = january["PULocationID"].value_counts(normalize=True)
    dropoffs = january["DOLocationID"].value_counts(normalize=True)
    assert {74, 75, 41} <= set(pickups.index[:4])
    assert pickups.iloc[:5].sum() > 0.25
    assert dropoffs.iloc[:5].sum() < 0.15
    assert dropoffs.size > pickups.size * 0.9


def test_duration_grows_with_distance_and_depends_on_the_hour(january):
    clean = january[duration_minutes(january).between(1, 60) & (january["trip_distance"] > 0)]
    minutes = duration_minutes(clean)
    speed = clean["trip_distance"] / (minutes / 60)
    assert 7 < speed.median() < 12
    short = minutes[clean["trip_distance"].between(0.5, 1.5)].median()
    long = minutes[clean["trip_distance"].between(4, 6)].median()
    assert long > 2 * short
    hour = clean["lpep_pickup_datetime"].dt.hour
    night_speed = speed[hour.between(1, 4)].median()
    rush_speed = speed[hour.between(16, 18)].median()
    assert night_speed > 1.3 * rush_speed


def test_a_few_pickups_fall_outside_the_month(january):
    pickup = january["lpep_pickup_datetime"]
    outside = (pickup < "2023-01-01") | (pickup >= "2023-02-01")
    assert 1 <= outside.sum() <= 10
    assert pickup.is_monotonic_increasing


def test_2024_narrows_integers_and_2025_adds_the_cbd_fee():
    narrow = synth.generate_month("2024-03", 500, seed=1)
    assert narrow["PULocationID"].dtype == np.int32
    assert list(narrow.columns) == synth.COLUMNS
    fee = synth.generate_month("2025-02", 500, seed=1)
    assert list(fee.columns) == synth.COLUMNS_2025
    assert set(fee["cbd_congestion_fee"]) == {0.0, 0.75}


def test_sixty_thousand_rows_generate_in_well_under_a_few_seconds():
    started = time.perf_counter()
    synth.generate_month("2023-04", 60_000, seed=5)
    assert time.perf_counter() - started < 3.0


def test_write_month_writes_the_tlc_file_name_atomically(tmp_path):
    path = synth.write_month("2023-01", 1_000, 42, tmp_path / "data")
    assert path == tmp_path / "data" / "green_tripdata_2023-01.parquet"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, synth.generate_month("2023-01", 1_000, 42))


def test_ensure_default_data_writes_only_missing_months(tmp_path):
    from services.core.settings import Settings

    settings = Settings(home=tmp_path)
    first = synth.ensure_default_data(settings, rows=800)
    assert [p.name for p in first] == ["green_tripdata_2023-01.parquet",
                                       "green_tripdata_2023-02.parquet"]
    assert all(p.parent == settings.data_dir for p in first)
    stamps = [p.stat().st_mtime_ns for p in first]
    first[1].unlink()
    second = synth.ensure_default_data(settings, rows=800)
    assert second == first
    assert first[0].stat().st_mtime_ns == stamps[0]
    assert len(pd.read_parquet(second[1])) == 800


@pytest.mark.parametrize("month", ["2023-13", "2023-1x", "2023-1", "January", "23-01", ""])
def test_a_malformed_month_is_rejected_with_its_value(month):
    with pytest.raises(InvalidInput, match="YYYY-MM"):
        synth.generate_month(month, 10, 1)


def test_zero_rows_is_rejected():
    with pytest.raises(InvalidInput, match="rows"):
        synth.generate_month("2023-01", 0, 1)

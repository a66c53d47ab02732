"""A synthetic twin of the NYC TLC green taxi trip files.

The real files cannot be downloaded everywhere flowkeeper runs, so this module
writes `green_tripdata_YYYY-MM.parquet` files with the real schema (column
names, order and types) and the shapes that matter to the training flow:
skewed pickup zones, a log-normal trip distance with outliers, durations that
depend on distance, zone pair and hour, and the dirty rows the 1-60 minute
filter removes. docs/TAXI_DATA.md lists the distributions.

Implementation notes:
- The "city" (zone positions, popularity, a speed factor per pickup/drop-off
  pair) comes from the seed alone, the trips from the seed and the month: two
  months written with one seed are two months of the same city, so a model
  trained on one has something to learn about the other.
- Trips are drawn in fixed-size chunks, each with its own random stream, so
  the output does not depend on whether anyone watches the progress.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from services.core.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from services.core.settings import Settings

Progress = Callable[[int, int], None]

DEFAULT_MONTHS = ("2023-01", "2023-02")
# about the size of a real green taxi month (60-77k rows); see docs/TAXI_DATA.md for timing
DEFAULT_ROWS = 65_000
DEFAULT_SEED = 42
CHUNK_ROWS = 16_384

ZONE_COUNT = 265
UNKNOWN_ZONE = 264
OUTSIDE_NYC_ZONE = 265
# Zones 1..263 get a position in a square this many miles wide.
CITY_WIDTH_MI = 16.0
# East Harlem North/South, Central Harlem, Morningside Heights, then Brooklyn and Queens zones
# that dominate green taxi pickups, with their share of all pickups.
HOT_PICKUP_ZONES = {
    74: 0.085, 75: 0.075, 41: 0.055, 166: 0.04, 42: 0.03, 97: 0.025, 65: 0.025, 7: 0.025,
    82: 0.02, 129: 0.02, 95: 0.018, 244: 0.015, 260: 0.012, 181: 0.012, 255: 0.01,
}
# Manhattan zones south of 96th Street: trips ending there pay the congestion surcharge.
MANHATTAN_CORE_ZONES = np.array([
    4, 12, 13, 43, 45, 48, 50, 68, 79, 87, 88, 90, 100, 107, 113, 114, 125, 137, 140, 141,
    142, 143, 144, 148, 158, 161, 162, 163, 164, 170, 186, 209, 211, 224, 229, 230, 231, 232,
    233, 234, 236, 237, 238, 239, 246, 249, 261, 262, 263,
])
CONGESTION_SURCHARGE = 2.75
CBD_CONGESTION_FEE = 0.75

# Pickups by hour of day (relative), and the traffic speed factor of each hour.
PICKUP_HOUR_WEIGHTS = np.array([
    1.6, 1.1, 0.8, 0.6, 0.5, 0.6, 1.3, 2.8, 4.0, 4.3, 4.6, 5.0,
    5.3, 5.5, 5.9, 6.4, 6.6, 6.6, 6.3, 5.3, 4.3, 3.6, 2.9, 2.2,
])
HOUR_SPEED_FACTORS = np.array([
    1.35, 1.40, 1.40, 1.40, 1.35, 1.30, 1.15, 0.90, 0.82, 0.85, 0.95, 0.95,
    0.95, 0.92, 0.88, 0.82, 0.80, 0.80, 0.85, 0.95, 1.05, 1.10, 1.15, 1.25,
])
CITY_SPEED_MPH = 10.0
WEEKEND_SPEED_FACTOR = 1.1
# Share of the rows that make the 1-60 minute filter work: trips ended within a minute
# (cancelled, zero-length), and meters left running for hours.
SHORT_TRIP_SHARE = 0.014
ZERO_DISTANCE_SHARE = 0.015
METER_LEFT_RUNNING_SHARE = 0.006
# Rows where the dispatch data is missing: these columns are null together.
MISSING_DISPATCH_SHARE = 0.035

COLUMNS = [
    "VendorID", "lpep_pickup_datetime", "lpep_dropoff_datetime", "store_and_fwd_flag",
    "RatecodeID", "PULocationID", "DOLocationID", "passenger_count", "trip_distance",
    "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "ehail_fee",
    "improvement_surcharge", "total_amount", "payment_type", "trip_type",
    "congestion_surcharge",
]
COLUMNS_2025 = [*COLUMNS, "cbd_congestion_fee"]


def parse_month(month: str) -> tuple[int, int]:
    """'2023-01' -> (2023, 1); InvalidInput naming the value otherwise."""
    try:
        year_text, month_text = month.split("-")
        year, number = int(year_text), int(month_text)
    except ValueError:
        raise InvalidInput(f"month must look like YYYY-MM, got {month!r}") from None
    if not (2009 <= year <= 2100 and 1 <= number <= 12 and len(year_text) == 4
            and len(month_text) == 2):
        raise InvalidInput(f"month must look like YYYY-MM, got {month!r}")
    return year, number


def file_name(month: str) -> str:
    """The TLC file name of a month's green taxi trips."""
    parse_month(month)
    return f"green_tripdata_{month}.parquet"


def columns_for(month: str) -> list[str]:
    """The columns of a month's file, in order (2025 files add cbd_congestion_fee)."""
    year, _ = parse_month(month)
    return COLUMNS_2025 if year >= 2025 else COLUMNS


class _City:
    """What stays the same from month to month for one seed."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 0xC17])
        mapped = ZONE_COUNT - 2  # 264 and 265 have no place on the map
        positions = rng.uniform(0.0, CITY_WIDTH_MI, size=(mapped, 2))
        gaps = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=2)
        # streets are not straight lines; a trip inside one zone still goes somewhere
        road = 1.3 * gaps
        np.fill_diagonal(road, 0.9)
        self.road_mi = road

        pickup = rng.lognormal(0.0, 0.7, size=ZONE_COUNT)
        pickup[[UNKNOWN_ZONE - 1, OUTSIDE_NYC_ZONE - 1]] = 0.0
        pickup *= (1.0 - sum(HOT_PICKUP_ZONES.values())) / pickup.sum()
        for zone, share in HOT_PICKUP_ZONES.items():
            pickup[zone - 1] = share
        self.pickup_cdf = np.cumsum(pickup / pickup.sum())

        # drop-offs: popular places, less likely the farther they are
        popularity = rng.lognormal(0.0, 0.8, size=mapped)
        attraction = popularity[None, :] * np.exp(-road / 1.3)
        self.dropoff_cdf = np.cumsum(attraction / attraction.sum(axis=1, keepdims=True), axis=1)

        # some routes are faster than others (avenues, highways, bridges)
        self.pair_speed = np.clip(rng.lognormal(0.0, 0.25, size=(ZONE_COUNT, ZONE_COUNT)), 0.5, 2.0)


@lru_cache(maxsize=4)
def _city(seed: int) -> _City:
    return _City(seed)


def _pick(rng: np.random.Generator, values: list, weights: list[float], size: int) -> np.ndarray:
    weights_array = np.asarray(weights, dtype=float)
    return rng.choice(np.asarray(values), size=size, p=weights_array / weights_array.sum())


def _month_bounds(year: int, number: int) -> tuple[np.datetime64, np.datetime64]:
    start = np.datetime64(f"{year:04d}-{number:02d}", "M")
    return start.astype("datetime64[us]"), (start + 1).astype("datetime64[us]")


def _trips(city: _City, rng: np.random.Generator, size: int, year: int, number: int) -> dict:
    """Draw `size` trips: every column as a numpy array."""
    start, end = _month_bounds(year, number)
    days = int((end - start) // np.timedelta64(1, "D"))
    weekday = (np.arange(days) + (start.astype("datetime64[D]").astype(int) + 3)) % 7
    day_weights = np.where(weekday >= 5, 0.8, 1.0)
    day = rng.choice(days, size=size, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=size, p=PICKUP_HOUR_WEIGHTS / PICKUP_HOUR_WEIGHTS.sum())
    second_of_hour = rng.integers(0, 3600, size=size)
    pickup_s = day * 86_400 + hour * 3600 + second_of_hour

    pu = np.searchsorted(city.pickup_cdf, rng.random(size), side="right") + 1
    pu = np.minimum(pu, ZONE_COUNT - 2)
    do = (city.dropoff_cdf[pu - 1] < rng.random(size)[:, None]).sum(axis=1) + 1
    do = np.minimum(do, ZONE_COUNT - 2)
    true_distance = city.road_mi[pu - 1, do - 1] * rng.lognormal(0.0, 0.25, size=size)
    # a few trips end outside the city or in no known zone
    outside = rng.random(size) < 0.004
    do[outside] = OUTSIDE_NYC_ZONE
    true_distance[outside] = rng.uniform(8.0, 30.0, size=outside.sum())
    unknown = rng.random(size) < 0.002
    pu[unknown & (rng.random(size) < 0.5)] = UNKNOWN_ZONE
    do[unknown] = UNKNOWN_ZONE

    # longer trips reach faster roads
    speed_mph = (CITY_SPEED_MPH * HOUR_SPEED_FACTORS[hour] * city.pair_speed[pu - 1, do - 1]
                 * np.where(weekday[day] >= 5, WEEKEND_SPEED_FACTOR, 1.0)
                 * np.clip(true_distance / 1.8, 0.3, 10.0) ** 0.3)
    duration_s = (60.0 * true_distance / speed_mph * 60.0 + 90.0) * rng.lognormal(0.0, 0.2, size)

    distance = np.round(true_distance, 2)
    # trips that ended within a minute: cancelled or mis-keyed
    short = rng.random(size) < SHORT_TRIP_SHARE
    duration_s[short] = rng.uniform(0.0, 59.0, size=short.sum())
    distance[short] = np.round(rng.uniform(0.0, 0.3, size=short.sum()), 2)
    # distance not recorded: most of these also ended at once
    zero = rng.random(size) < ZERO_DISTANCE_SHARE
    distance[zero] = 0.0
    ended_at_once = zero & (rng.random(size) < 0.6)
    duration_s[ended_at_once] = rng.uniform(0.0, 59.0, size=ended_at_once.sum())
    # the meter was left running: from an hour to a day
    running = rng.random(size) < METER_LEFT_RUNNING_SHARE
    duration_s[running] = 60.0 * np.exp(rng.uniform(np.log(61.0), np.log(1439.0), running.sum()))

    ratecode = _pick(rng, [1.0, 5.0, 2.0, 3.0, 4.0, 99.0],
                     [95.5, 3.2, 0.5, 0.2, 0.4, 0.2], size)
    payment = _pick(rng, [1.0, 2.0, 3.0, 4.0, 5.0], [63.0, 35.0, 1.2, 0.5, 0.3], size)
    minutes = duration_s / 60.0
    metered = 3.0 + 3.5 * distance + 0.35 * np.clip(minutes - distance * 4.0, 0.0, 60.0)
    fare = np.where(ratecode == 5.0, np.round(rng.uniform(5.0, 80.0, size)), np.round(metered, 1))
    fare = np.where(ratecode == 2.0, 70.0, fare)
    weekday_peak = (weekday[day] < 5) & (hour >= 16) & (hour < 20)
    night = (hour >= 20) | (hour < 6)
    extra = np.where(weekday_peak, 2.5, np.where(night, 1.0, 0.0))
    mta_tax = np.where(ratecode == 5.0, 0.0, 0.5)
    tips = rng.random(size) < 0.7
    tip = np.where((payment == 1.0) & tips, np.round(fare * rng.uniform(0.1, 0.3, size), 2), 0.0)
    tolls = np.where(rng.random(size) < 0.02, 6.55, 0.0)
    congestion = np.where(np.isin(do, MANHATTAN_CORE_ZONES), CONGESTION_SURCHARGE, 0.0)

    missing = rng.random(size) < MISSING_DISPATCH_SHARE
    flag = np.where(rng.random(size) < 0.004, "Y", "N").astype(object)
    flag[missing] = None
    trip_type = np.where(rng.random(size) < 0.96, 1.0, 2.0)
    passengers = _pick(rng, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0],
                       [85.0, 8.0, 2.0, 1.0, 2.0, 1.0, 1.0], size)
    for column in (ratecode, payment, trip_type, passengers, congestion):
        column[missing] = np.nan

    improvement = 1.0 if year >= 2023 else 0.3
    cbd = np.where(np.isin(do, MANHATTAN_CORE_ZONES), CBD_CONGESTION_FEE, 0.0)
    total = fare + extra + mta_tax + tip + tolls + improvement + np.nan_to_num(congestion)
    if year >= 2025:
        total = total + cbd

    pickup = start + pickup_s.astype("timedelta64[s]")
    columns = {
        "VendorID": np.where(rng.random(size) < 0.88, 2, 1),
        "lpep_pickup_datetime": pickup,
        "lpep_dropoff_datetime": pickup + np.round(duration_s).astype("timedelta64[s]"),
        "store_and_fwd_flag": flag,
        "RatecodeID": ratecode,
        "PULocationID": pu,
        "DOLocationID": do,
        "passenger_count": passengers,
        "trip_distance": distance,
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": mta_tax,
        "tip_amount": tip,
        "tolls_amount": tolls,
        "ehail_fee": np.full(size, np.nan),
        "improvement_surcharge": np.full(size, improvement),
        "total_amount": np.round(total, 2),
        "payment_type": payment,
        "trip_type": trip_type,
        "congestion_surcharge": congestion,
    }
    if year >= 2025:
        columns["cbd_congestion_fee"] = cbd
    return columns


def _add_month_oddities(columns: dict, rng: np.random.Generator, rows: int, year: int,
                        number: int) -> None:
    """Absurd distances and pickups outside the month, a handful per file, as in the real ones."""
    distance = columns["trip_distance"]
    absurd = rng.choice(rows, size=min(rows, 1 + rows // 25_000), replace=False)
    distance[absurd] = np.round(rng.uniform(100.0, 900.0, size=absurd.size), 2)
    if rows >= 10_000:
        distance[absurd[0]] = np.round(rng.uniform(100_000.0, 250_000.0), 2)

    start, end = _month_bounds(year, number)
    strays = rng.choice(rows, size=min(rows, 2 + rows // 20_000), replace=False)
    pickup, dropoff = columns["lpep_pickup_datetime"], columns["lpep_dropoff_datetime"]
    for position, row in enumerate(strays):
        offset = np.timedelta64(int(rng.integers(60, 3 * 86_400)), "s")
        moved_to = start - offset if position % 2 == 0 else end + offset
        dropoff[row] = moved_to + (dropoff[row] - pickup[row])
        pickup[row] = moved_to


def generate_month(month: str, rows: int, seed: int, *,
                   progress: Progress | None = None) -> pd.DataFrame:
    """One month of synthetic green taxi trips, in the real file's columns and types."""
    import pandas as pd

    year, number = parse_month(month)
    if rows < 1:
        raise InvalidInput(f"rows must be at least 1, got {rows}")
    city = _city(seed)
    chunks = []
    for index, first in enumerate(range(0, rows, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, rows - first)
        rng = np.random.default_rng([seed, year, number, index])
        chunks.append(_trips(city, rng, size, year, number))
        if progress is not None:
            progress(first + size, rows)
    columns = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    _add_month_oddities(columns, np.random.default_rng([seed, year, number, 1 << 30]), rows,
                        year, number)

    # the real files are in pickup order; 2024 files narrowed the integers to 32 bits
    order = np.argsort(columns["lpep_pickup_datetime"], kind="stable")
    integer = "int32" if year >= 2024 else "int64"
    frame = pd.DataFrame({name: values[order] for name, values in columns.items()})
    frame = frame.astype({"VendorID": integer, "PULocationID": integer, "DOLocationID": integer,
                          "store_and_fwd_flag": "str"})
    return frame[columns_for(month)]


def write_month(month: str, rows: int, seed: int, out_dir: str | Path, *,
                progress: Progress | None = None) -> Path:
    """Write green_tripdata_YYYY-MM.parquet into `out_dir` (atomically) and return its path."""
    frame = generate_month(month, rows, seed, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / file_name(month)
    handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        frame.to_parquet(temporary, engine="pyarrow", index=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def default_data_dir(settings: Settings) -> Path:
    """Where the flow looks for (and the CLI writes) synthetic files: FLOWKEEPER_HOME/data."""
    return settings.data_dir


def ensure_default_data(settings: Settings, months: tuple[str, ...] = DEFAULT_MONTHS,
                        rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, *,
                        progress: Progress | None = None) -> tuple[Path, ...]:
    """The files of `months` under the data folder, writing those that are missing."""
    out_dir = default_data_dir(settings)
    paths = []
    for month in months:
        path = out_dir / file_name(month)
        if not path.exists():
            write_month(month, rows, seed, out_dir, progress=progress)
        paths.append(path)
    return tuple(paths)

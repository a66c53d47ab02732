"""The reference workload: NYC green taxi trip-duration training, as a flow.

The MLOps Zoomcamp orchestration module's `orchestrate.py`, on current
libraries: read a training and a validation month, keep trips of 1-60
minutes, vectorise `PU_DO` and `trip_distance`, train XGBoost with the
course's tuned parameters, and log everything to MLflow. The logic lives in
plain functions; the tasks are thin wrappers around them.

pandas, XGBoost, scikit-learn and MLflow take seconds to import and come with
the `taxi` extra, so they (and the synthetic data module, which needs numpy)
are imported inside the functions that use them: importing this module (as the
worker and the CLI do to check the entrypoint) stays cheap and works on a lean
installation; a run there fails at once with what to install.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from flows import create_markdown_artifact, flow, get_run_logger, task
from flows.taxi.extra import require_taxi_extra
from services.core.errors import InvalidInput
from services.core.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    import scipy.sparse
    import xgboost
    from sklearn.feature_extraction import DictVectorizer

EXPERIMENT = "nyc-taxi-experiment"
MODEL_NAME = "models_mlflow"
REPORT_KEY = "duration-model-report"
# the course's hyperopt result; `reg:linear` there is the old name of reg:squarederror
BEST_PARAMS = {
    "learning_rate": 0.09585355369315604,
    "max_depth": 30,
    "min_child_weight": 1.060597050922164,
    "objective": "reg:squarederror",
    "reg_alpha": 0.018060244040060163,
    "reg_lambda": 0.011658731377413597,
    "seed": 42,
}
EARLY_STOPPING_ROUNDS = 20
MIN_DURATION_MIN = 1.0
MAX_DURATION_MIN = 60.0
CATEGORICAL = ["PU_DO"]
NUMERICAL = ["trip_distance"]
DOWNLOAD_TIMEOUT_S = 60.0
# green files name the times lpep_*, yellow ones tpep_*
TIME_COLUMNS = [
    ("lpep_pickup_datetime", "lpep_dropoff_datetime"),
    ("tpep_pickup_datetime", "tpep_dropoff_datetime"),
]
LOCATION_COLUMNS = ["PULocationID", "DOLocationID"]


def is_url(path: str | Path) -> bool:
    """Whether `path` is an http(s) URL rather than a local file."""
    return urlsplit(str(path)).scheme in ("http", "https")


def _download(url: str, directory: Path) -> Path:
    import httpx

    target = directory / (Path(urlsplit(url).path).name or "download.parquet")
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT_S) as reply:
            if reply.status_code != 200:
                raise InvalidInput(f"could not download {url}: HTTP {reply.status_code}")
            with target.open("wb") as out:
                for block in reply.iter_bytes():
                    out.write(block)
    except httpx.HTTPError as error:
        raise InvalidInput(f"could not download {url}: {error}") from error
    return target


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError) as error:
        raise InvalidInput(f"{label} is not a readable parquet file: {error}") from error
    times = next((pair for pair in TIME_COLUMNS if set(pair) <= names), None)
    missing = sorted({*LOCATION_COLUMNS, *NUMERICAL} - names)
    if times is None or missing:
        expected = missing or ["lpep_pickup_datetime", "lpep_dropoff_datetime"]
        raise InvalidInput(f"{label} is not a taxi trip file: no column {', '.join(expected)}")
    frame = pd.read_parquet(path, columns=[*times, *LOCATION_COLUMNS, *NUMERICAL])
    return frame.rename(columns={times[0]: "pickup_datetime", times[1]: "dropoff_datetime"})


def prepare_trips(frame: pd.DataFrame) -> pd.DataFrame:
    """Add `duration` (minutes), keep 1-60 minute trips, and make the locations strings."""
    # subtracting works for any timestamp unit (s, ms, us, ns) the file came with
    duration = (frame["dropoff_datetime"] - frame["pickup_datetime"]).dt.total_seconds() / 60
    kept = frame.assign(duration=duration)
    kept = kept[(kept["duration"] >= MIN_DURATION_MIN) & (kept["duration"] <= MAX_DURATION_MIN)]
    # as strings the IDs are categories, not numbers, and any integer width gives the same text
    return kept.astype({column: str for column in LOCATION_COLUMNS})


def read_dataframe(path: str | Path) -> pd.DataFrame:
    """Read a trip file from a local path or an http(s) URL and prepare it for training."""
    if is_url(path):
        directory = Path(tempfile.mkdtemp(prefix="flowkeeper-taxi-"))
        try:
            return prepare_trips(_read_parquet(_download(str(path), directory), str(path)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    local = Path(path).expanduser()
    if not local.is_file():
        raise InvalidInput(f"no such file: {local}")
    return prepare_trips(_read_parquet(local, str(local)))


class Features(NamedTuple):
    """The training inputs, in the order the course unpacks them."""

    X_train: scipy.sparse.csr_matrix
    X_val: scipy.sparse.csr_matrix
    y_train: Any
    y_val: Any
    dv: DictVectorizer


def add_features(df_train: pd.DataFrame, df_val: pd.DataFrame) -> Features:
    """PU_DO and trip_distance through a DictVectorizer fitted on the training trips."""
    from sklearn.feature_extraction import DictVectorizer

    def records(frame: pd.DataFrame) -> list[dict]:
        features = frame.assign(PU_DO=frame["PULocationID"] + "_" + frame["DOLocationID"])
        return features[CATEGORICAL + NUMERICAL].to_dict(orient="records")

    dv = DictVectorizer()
    X_train = dv.fit_transform(records(df_train))
    X_val = dv.transform(records(df_val))
    return Features(X_train, X_val, df_train["duration"].to_numpy(), df_val["duration"].to_numpy(),
                    dv)


def fit_booster(X_train, X_val, y_train, y_val, num_boost_round: int = 100,
                params: dict | None = None) -> tuple[xgboost.Booster, float]:
    """Train with early stopping on the validation set; return the booster and its RMSE."""
    import xgboost as xgb
    from sklearn.metrics import root_mean_squared_error

    train = xgb.DMatrix(X_train, label=y_train)
    valid = xgb.DMatrix(X_val, label=y_val)
    booster = xgb.train(
        params=params or BEST_PARAMS, dtrain=train, num_boost_round=num_boost_round,
        evals=[(valid, "validation")], early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=max(1, num_boost_round // 10),
    )
    # predict with the best iteration only, as early stopping intends
    predictions = booster.predict(valid, iteration_range=(0, booster.best_iteration + 1))
    return booster, float(root_mean_squared_error(y_val, predictions))


def linear_baseline_rmse(X_train, X_val, y_train, y_val) -> float:
    """Validation RMSE of a linear regression on the same features: the bar to beat."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import root_mean_squared_error

    model = LinearRegression().fit(X_train, y_train)
    return float(root_mean_squared_error(y_val, model.predict(X_val)))


def build_report(rmse: float, today: date, facts: dict[str, object]) -> str:
    """The markdown report: title, summary, a date/RMSE table, and the run's facts."""
    lines = [
        "# RMSE Report",
        "",
        "## Summary",
        "",
        "Trip duration prediction (minutes) for NYC green taxis: XGBoost on the pickup/drop-off "
        "zone pair and the trip distance.",
        "",
        "## RMSE XGBoost Model",
        "",
        "| Date | RMSE |",
        "|:-----|-----:|",
        f"| {today.isoformat()} | {rmse:.2f} |",
        "",
        "## Facts",
        "",
    ]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    return "\n".join(lines) + "\n"


def _open_experiment(mlflow_module, name: str, tracking_uri: str) -> None:
    """Select the experiment; a new one on a local sqlite store keeps its artifacts beside the
    database (MLflow's default would be ./mlruns in whatever folder the worker started in)."""
    if mlflow_module.get_experiment_by_name(name) is None and tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        artifacts = (database.parent / "mlartifacts").resolve()
        try:
            mlflow_module.create_experiment(name, artifact_location=artifacts.as_uri())
        except mlflow_module.exceptions.MlflowException:
            pass  # another process created it in the meantime
    mlflow_module.set_experiment(name)


def train_and_log(X_train, X_val, y_train, y_val, dv, *, tracking_uri: str,
                  experiment: str = EXPERIMENT, num_boost_round: int = 100,
                  tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Train the booster inside one MLflow run that records params, rmse, preprocessor, model."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow
    import mlflow.xgboost
    import xgboost as xgb

    mlflow.set_tracking_uri(tracking_uri)
    _open_experiment(mlflow, experiment, tracking_uri)
    with mlflow.start_run(tags=tags) as run:
        mlflow.log_params({**BEST_PARAMS, "num_boost_round": num_boost_round,
                           "early_stopping_rounds": EARLY_STOPPING_ROUNDS})
        booster, rmse = fit_booster(X_train, X_val, y_train, y_val, num_boost_round)
        mlflow.log_metric("rmse", rmse)
        with tempfile.TemporaryDirectory(prefix="flowkeeper-taxi-") as directory:
            preprocessor = Path(directory) / "preprocessor.b"
            preprocessor.write_bytes(pickle.dumps(dv))
            mlflow.log_artifact(str(preprocessor), artifact_path="preprocessor")
        # explicit requirements skip MLflow's inference, which costs 1.5-2 s per model
        info = mlflow.xgboost.log_model(booster, name=MODEL_NAME,
                                        pip_requirements=[f"xgboost=={xgb.__version__}"])
    return {"rmse": rmse, "mlflow_run_id": run.info.run_id, "model_uri": info.model_uri,
            "best_iteration": int(booster.best_iteration)}


# --- the flow -----------------------------------------------------------------------------


@task(name="Read taxi data", retries=3, retry_delay_seconds=2)
def read_data(path: str) -> pd.DataFrame:
    """Read a month of trips (local path or URL), keeping 1-60 minute trips."""
    return read_dataframe(path)


@task(name="Add features")
def add_features_task(df_train: pd.DataFrame, df_val: pd.DataFrame) -> Features:
    """Vectorise PU_DO and trip_distance."""
    return add_features(df_train, df_val)


# The features travel as one value so that the task graph links this task to add_features.
# A retry covers a tracking store that was briefly locked or unreachable.
@task(name="Train best model", log_prints=True, retries=1, retry_delay_seconds=5)
def train_best_model(features: Features, tracking_uri: str, experiment: str,
                     num_boost_round: int, facts: dict[str, object]) -> dict[str, Any]:
    """Train, log to MLflow, and publish the RMSE report."""
    result = train_and_log(*features, tracking_uri=tracking_uri, experiment=experiment,
                           num_boost_round=num_boost_round, tags=_flow_run_tags())
    print(f"validation RMSE {result['rmse']:.4f} (MLflow run {result['mlflow_run_id']})")
    report = build_report(result["rmse"], date.today(), {
        **facts, "best iteration": result["best_iteration"],
        "MLflow experiment": experiment, "MLflow run": result["mlflow_run_id"],
        "model": result["model_uri"],
    })
    create_markdown_artifact(key=REPORT_KEY, markdown=report,
                             description="Validation RMSE of the trip-duration model")
    return result


def _flow_run_tags() -> dict[str, str]:
    """MLflow tags that lead from the MLflow run back to the flow run that trained it."""
    from flows.context import current_flow_run

    context = current_flow_run()
    if context is None:
        return {}
    return {"flowkeeper.flow_run_id": context.run.id, "flowkeeper.flow_run_name": context.run.name}


@flow(name="taxi-training", log_prints=True)
def main_flow(train_path: str | None = None, val_path: str | None = None,
              experiment: str = EXPERIMENT, num_boost_round: int = 100) -> dict[str, Any]:
    """Train the NYC green taxi trip-duration model; without paths, on synthetic 2023-01/02."""
    if num_boost_round < 1:
        raise InvalidInput(f"parameter 'num_boost_round' must be at least 1, got {num_boost_round}")
    # a worker installed without the extra fails the run with what to install, at once
    require_taxi_extra("the taxi-training flow")
    logger = get_run_logger()
    settings = Settings()
    if train_path is None or val_path is None:
        from flows.taxi.synth import ensure_default_data

        default_train, default_val = ensure_default_data(settings)
        train_path = train_path or str(default_train)
        val_path = val_path or str(default_val)
        logger.info("no paths given: using the synthetic files in %s", default_train.parent)

    df_train = read_data(train_path)
    df_val = read_data(val_path)
    features = add_features_task(df_train, df_val)
    rows = {"train": len(features.y_train), "validation": len(features.y_val)}
    facts = {"training data": f"{train_path} ({rows['train']} trips)",
             "validation data": f"{val_path} ({rows['validation']} trips)",
             "features": features.X_train.shape[1]}
    result = train_best_model(features, settings.tracking_uri, experiment, num_boost_round,
                              facts)
    return {"rmse": result["rmse"], "mlflow_run_id": result["mlflow_run_id"],
            "model_uri": result["model_uri"], "rows": rows}

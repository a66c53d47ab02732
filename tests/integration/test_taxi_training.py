"""The taxi training flow end to end on small synthetic months: MLflow run, model, report."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.taxi import synth, training
from services.core.errors import InvalidInput
from services.core.models import StateType

pytestmark = pytest.mark.slow

ROWS = 3_000
ROUNDS = 8


@pytest.fixture(scope="module")
def months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("taxi")
    return (synth.write_month("2023-01", ROWS, 42, folder),
            synth.write_month("2023-02", ROWS, 42, folder))


@pytest.fixture()
def sdk(settings, redis_client):
    from flows import runtime

    runtime.configure(settings, redis_client)
    yield runtime
    runtime.flush()


@pytest.fixture()
def file_server(months) -> Iterator[str]:
    """A local HTTP server over the folder of the synthetic months."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(months[0].parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def only_run(store, flow_name: str):
    runs = store.list_flow_runs(flow=flow_name)
    assert len(runs) == 1
    return runs[0]


def test_the_flow_trains_logs_to_mlflow_and_publishes_the_report(sdk, store, settings, months):
    import mlflow
    import mlflow.xgboost
    import numpy as np

    result = training.main_flow(str(months[0]), str(months[1]), num_boost_round=ROUNDS)
    sdk.flush()

    assert 2 < result["rmse"] < 15
    assert 0.9 * ROWS < result["rows"]["train"] < ROWS

    client = mlflow.MlflowClient(settings.tracking_uri)
    run = client.get_run(result["mlflow_run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "nyc-taxi-experiment"
    assert run.data.params["max_depth"] == "30"
    assert run.data.params["objective"] == "reg:squarederror"
    assert run.data.params["num_boost_round"] == str(ROUNDS)
    assert run.data.metrics["rmse"] == pytest.approx(result["rmse"])
    artifacts = [item.path for item in client.list_artifacts(run.info.run_id, "preprocessor")]
    assert artifacts == ["preprocessor/preprocessor.b"]
    # the artifacts live beside the sqlite database, not in the working folder
    assert experiment.artifact_location.startswith(Path(settings.home_dir).as_uri())

    mlflow.set_tracking_uri(settings.tracking_uri)
    booster = mlflow.xgboost.load_model(f"runs:/{run.info.run_id}/models_mlflow")
    features = training.add_features(training.read_dataframe(months[0]),
                                     training.read_dataframe(months[1]))
    import xgboost

    predictions = booster.predict(xgboost.DMatrix(features.X_val))
    assert predictions.shape == (result["rows"]["validation"],)
    assert np.isfinite(predictions).all()

    flow_run = only_run(store, "taxi-training")
    assert flow_run.state is StateType.COMPLETED
    tasks = store.task_runs(flow_run.id)
    assert sorted(task.task_name for task in tasks) == [
        "Add features", "Read taxi data", "Read taxi data", "Train best model"]
    assert all(task.state is StateType.COMPLETED for task in tasks)
    assert len(store.task_graph(flow_run.id)) == 3  # read x2 -> features -> train
    assert run.data.tags["flowkeeper.flow_run_id"] == flow_run.id
    assert run.data.tags["flowkeeper.flow_run_name"] == flow_run.name
    reports = [a for a in store.artifacts(flow_run.id) if a.key == "duration-model-report"]
    assert len(reports) == 1
    report = reports[0]
    assert report.type == "markdown"
    assert f"| {result['rmse']:.2f} |" in report.data
    assert run.info.run_id in report.data


def test_without_paths_the_flow_uses_the_synthetic_months_in_the_data_folder(sdk, store,
                                                                            settings):
    written = [synth.write_month(month, 1_500, 7, settings.data_dir)
               for month in synth.DEFAULT_MONTHS]
    stamps = [path.stat().st_mtime_ns for path in written]

    result = training.main_flow(num_boost_round=3)

    assert result["rows"]["train"] < 1_500  # the small files written above, not new ones
    assert [path.stat().st_mtime_ns for path in written] == stamps
    sdk.flush()
    report = store.artifacts(only_run(store, "taxi-training").id)[0].data
    assert "green_tripdata_2023-01.parquet" in report


def test_a_missing_training_file_fails_the_run_after_retries_naming_the_path(
        sdk, store, tmp_path, months, monkeypatch):
    monkeypatch.setattr(training.read_data, "retry_delays", [0.0] * training.read_data.retries)
    missing = tmp_path / "green_tripdata_2019-01.parquet"
    with pytest.raises(InvalidInput, match="no such file"):
        training.main_flow(str(missing), str(months[1]), num_boost_round=2)
    sdk.flush()
    run = only_run(store, "taxi-training")
    assert run.state is StateType.FAILED
    assert str(missing) in (run.state_message or "") + str(run.error)
    [read] = store.task_runs(run.id)
    assert read.state is StateType.FAILED
    assert read.run_count == 4  # the first attempt and three retries


def test_zero_boosting_rounds_fail_the_run_naming_the_parameter(sdk, store, months):
    with pytest.raises(InvalidInput, match="'num_boost_round' must be at least 1"):
        training.main_flow(str(months[0]), str(months[1]), num_boost_round=0)
    sdk.flush()
    run = only_run(store, "taxi-training")
    assert run.state is StateType.FAILED
    assert store.task_runs(run.id) == []


def test_without_the_taxi_extra_the_run_fails_at_once_saying_what_to_install(
        sdk, store, months, monkeypatch):
    from flows.taxi import extra

    monkeypatch.setattr(extra, "_installed", lambda name: name != "xgboost")
    with pytest.raises(extra.MissingTaxiExtra):
        training.main_flow(str(months[0]), str(months[1]), num_boost_round=2)
    sdk.flush()
    run = only_run(store, "taxi-training")
    assert run.state is StateType.FAILED
    message = (run.state_message or "") + str(run.error)
    assert "pip install 'flowkeeper[taxi]'" in message and "xgboost not installed" in message
    assert store.task_runs(run.id) == []


def test_a_month_is_read_from_an_http_url_like_from_a_file(file_server, months):
    local = training.read_dataframe(months[0])
    remote = training.read_dataframe(f"{file_server}/{months[0].name}")
    assert remote.equals(local)


def test_a_url_that_answers_404_is_a_clear_error(file_server):
    url = f"{file_server}/green_tripdata_1999-01.parquet"
    with pytest.raises(InvalidInput, match=f"could not download {url}: HTTP 404"):
        training.read_dataframe(url)


def test_xgboost_beats_a_linear_regression_on_the_same_features(tmp_path):
    train = synth.write_month("2023-01", 10_000, 42, tmp_path)
    val = synth.write_month("2023-02", 10_000, 42, tmp_path)
    features = training.add_features(training.read_dataframe(train), training.read_dataframe(val))

    linear = training.linear_baseline_rmse(*features[:4])
    _, boosted = training.fit_booster(*features[:4], num_boost_round=20)

    assert boosted < 0.9 * linear

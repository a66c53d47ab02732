"""`-p key=value` parsing and deployment files: values, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.deployment_files import (
    DeploymentFileError,
    is_deployment_file,
    load_deployment_file,
    locate,
)
from services.cli.params import parse_parameters
from services.core.errors import InvalidInput


def test_parameter_values_are_json_when_they_parse_else_text():
    assert parse_parameters(["rows=500", "ratio=0.5", "fast=true", "months=[1, 2]",
                             "month=2023-01", "name=taxi", "empty=", "url=a=b"]) == {
        "rows": 500, "ratio": 0.5, "fast": True, "months": [1, 2], "month": "2023-01",
        "name": "taxi", "empty": "", "url": "a=b"}


@pytest.mark.parametrize("item", ["rows", "=5", " =5"])
def test_a_parameter_without_key_and_equals_sign_is_rejected(item):
    with pytest.raises(InvalidInput, match="key=value"):
        parse_parameters([item])


def test_file_arguments_are_told_apart_from_names():
    assert is_deployment_file("deployments.yaml")
    assert is_deployment_file("ops/nightly")
    assert not is_deployment_file("taxi-training")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_file_with_a_list_of_deployments_loads_them_all(tmp_path):
    path = write(tmp_path, "d.yaml", """
deployments:
  - name: nightly
    entrypoint: flows.taxi.training:main_flow
    schedule: {cron: "0 3 * * *"}
  - name: adhoc
    entrypoint: flows.taxi.training:main_flow
    parameters: {num_boost_round: 10}
""")

    nightly, adhoc = load_deployment_file(path)

    assert nightly.schedule.cron == "0 3 * * *"
    assert adhoc.parameters == {"num_boost_round": 10}


def test_a_json_file_with_one_deployment_loads_it(tmp_path):
    path = write(tmp_path, "d.json", '{"name": "one", "entrypoint": "a.b:c", "work_queue": "q"}')

    (deployment,) = load_deployment_file(path)

    assert (deployment.name, deployment.work_queue) == ("one", "q")


def test_a_json_syntax_error_names_the_file_line_and_column(tmp_path):
    path = write(tmp_path, "d.json", '{\n  "name": "one",\n  "entrypoint" "a.b:c"\n}')

    with pytest.raises(DeploymentFileError) as error:
        load_deployment_file(path)

    assert str(error.value).startswith(f"{path}:3:16: invalid JSON:")


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "d.yaml", "name: one\nentrypoint: a.b:c\n  tags: [x\n")

    with pytest.raises(DeploymentFileError) as error:
        load_deployment_file(path)

    assert str(error.value).startswith(f"{path}:3:")
    assert "invalid YAML" in str(error.value)


def test_a_validation_error_names_the_file_the_line_and_the_field_path(tmp_path):
    path = write(tmp_path, "d.yaml", """deployments:
  - name: good
    entrypoint: a.b:c
  - name: bad
    entrypoint: a.b:c
    schedule:
      cron: every day
""")

    with pytest.raises(DeploymentFileError) as error:
        load_deployment_file(path)

    assert str(error.value) == (f"{path}:7: deployments[1].schedule.cron: "
                                "'every day' is not a valid cron expression")


def test_a_misspelt_field_points_at_its_own_line(tmp_path):
    path = write(tmp_path, "d.json", '[\n {"name": "a",\n  "entrypoint": "a.b:c",\n'
                                     '  "queue": "q"}\n]')

    with pytest.raises(DeploymentFileError) as error:
        load_deployment_file(path)

    assert str(error.value).startswith(f"{path}:4: [0].queue: Extra inputs are not permitted")


def test_a_missing_field_points_at_the_deployment(tmp_path):
    path = write(tmp_path, "d.yaml", "- name: a\n  entrypoint: a.b:c\n- name: b\n")

    with pytest.raises(DeploymentFileError) as error:
        load_deployment_file(path)

    assert str(error.value).startswith(f"{path}:3: [1].entrypoint: Field required")


@pytest.mark.parametrize("name, text, message", [
    ("d.toml", "name = 1", "give a .json, .yaml or .yml file"),
    ("d.yaml", "", "describes no deployment"),
    ("d.yaml", "just text", "expected a deployment object"),
    ("d.json", '{"deployments": {"name": "a"}}', "'deployments' must be a list"),
])
def test_files_of_the_wrong_shape_say_what_is_wrong(tmp_path, name, text, message):
    with pytest.raises(DeploymentFileError, match=message):
        load_deployment_file(write(tmp_path, name, text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DeploymentFileError, match="nope.yaml: no such file"):
        load_deployment_file(tmp_path / "nope.yaml")


def test_locate_finds_the_deepest_present_node():
    text = "a:\n  b:\n    - x\n    - y\n"

    assert locate(text, ("a", "b", 1)) == 4
    assert locate(text, ("a", "missing")) == 1
    assert locate("{not yaml", ("a",)) is None

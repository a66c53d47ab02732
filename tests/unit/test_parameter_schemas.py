"""A flow's parameter schema, built from its signature where the code is, and checked
where it is not (the API, the scheduler): the same mistakes are caught with the same
messages, without importing the flow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from flows import flow
from flows.parameters import parameter_schema
from services.core.errors import InvalidInput
from services.core.models import DeploymentCreate, entrypoint_problem
from services.core.parameter_schemas import check_parameters, schema_problem


class Split(BaseModel):
    train: float
    test: float


class Opaque:
    """A class pydantic has no JSON schema for."""


@flow(name="taxi-training")
def train(month: str, rows: Annotated[int, Field(ge=1)] = 100, rate: float = 0.1,
          split: Split | None = None, model: Opaque | None = None,
          data: Path = Path("data.parquet")) -> None:
    """Train a model."""


@flow
def anything(**options: Any) -> None:
    """Takes any parameter by name."""


SCHEMA = parameter_schema(train.fn)


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


_deep = _nested(40)


def test_the_schema_lists_each_parameter_with_its_type_and_json_default():
    assert SCHEMA["type"] == "object"
    assert SCHEMA["required"] == ["month"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["rows"] == {"type": "integer", "minimum": 1, "default": 100}
    assert SCHEMA["properties"]["model"] == {"default": None}  # no schema: any value
    assert "default" not in SCHEMA["properties"]["data"]  # a Path is not JSON data
    assert schema_problem(SCHEMA) is None


def test_a_flow_taking_keywords_accepts_any_name():
    schema = parameter_schema(anything.fn)

    assert "additionalProperties" not in schema
    check_parameters(schema, {"whatever": 1}, "anything")


@pytest.mark.parametrize("parameters, message", [
    ({"month": "2024-01", "epochs": 3},
     "parameter 'epochs' of flow 'taxi-training': the flow has no such parameter (it takes: "
     "month, rows, rate, split, model, data)"),
    ({"rows": 5}, "parameter 'month' of flow 'taxi-training': missing; the flow requires it"),
    ({"month": "2024-01", "rows": 0},
     "parameter 'rows' of flow 'taxi-training': 0 is less than the minimum of 1"),
    ({"month": 202401}, "parameter 'month' of flow 'taxi-training': 202401 is not of type 'string'"),
    ({"month": "2024-01", "split": {"train": "most"}},
     "parameter 'split.train' of flow 'taxi-training': 'most' is not of type 'number'"),
])
def test_a_parameter_that_does_not_fit_is_named(parameters, message):
    with pytest.raises(InvalidInput) as caught:
        check_parameters(SCHEMA, parameters, "taxi-training")
    assert str(caught.value) == message


@pytest.mark.parametrize("parameters", [
    {"month": "2024-01", "epochs": 3}, {"rows": 5}, ["month"], {},
])
def test_a_mistake_in_names_reads_the_same_from_the_schema_and_from_the_flow(parameters):
    with pytest.raises(InvalidInput) as from_schema:
        check_parameters(SCHEMA, parameters, train.name)
    with pytest.raises(InvalidInput) as from_flow:
        train.validate_parameters(parameters)
    assert str(from_schema.value) == str(from_flow.value)


def test_a_partial_check_lets_required_parameters_come_with_each_run():
    check_parameters(SCHEMA, {"rows": 5}, "taxi-training", partial=True)
    with pytest.raises(InvalidInput, match="'rows'"):
        check_parameters(SCHEMA, {"rows": -1}, "taxi-training", partial=True)


@example({"month": "", "rows": 2.0**63})  # integral, and past the 64 bits pydantic reads
@example({"month": "", "rows": -(2.0**63) - 2048, "rate": 2**63})
@given(st.dictionaries(st.sampled_from(["month", "rows", "rate", "split"]),
                       st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5),
                                 st.none(), st.booleans())))
def test_what_the_schema_accepts_the_flow_itself_accepts(parameters):
    try:
        check_parameters(SCHEMA, parameters, "taxi-training")
    except InvalidInput:
        return
    train.validate_parameters(parameters)  # would raise InvalidInput


def test_an_integral_float_past_64_bits_is_the_integer_it_equals():
    validated = train.validate_parameters({"month": "2024-01", "rows": 2.0**63,
                                           "rate": 1e300})

    assert validated["rows"] == 2**63 and type(validated["rows"]) is int
    assert validated["rate"] == 1e300 and type(validated["rate"]) is float


@pytest.mark.parametrize("schema, problem", [
    ({"type": "array"}, '"type": "object"'),
    ({"type": "object", "properties": {"x": {"type": "integr"}}}, "not a valid JSON schema"),
])
def test_a_schema_that_is_not_one_of_parameters_is_refused(schema, problem):
    assert problem in schema_problem(schema)


@pytest.mark.parametrize("entrypoint", [
    "tiny:tiny_training", "pipelines.tiny:train", "tiny.py:tiny_training",
    "pipelines/tiny.py:train", "./pipelines/tiny.py:train",
])
def test_well_formed_entrypoints(entrypoint):
    assert entrypoint_problem(entrypoint) is None
    assert DeploymentCreate(name="x", entrypoint=entrypoint).entrypoint == entrypoint


@pytest.mark.parametrize("entrypoint, problem", [
    ("tiny", "must look like 'package.module:function' or 'path/to/file.py:function'"),
    ("tiny:tiny training", "must look like"),
    ("my-flows/tiny.txt:train", "must look like"),
    ("/srv/tiny.py:train", "relative, without '..'"),
    ("flows/../../tiny.py:train", "relative, without '..'"),
])
def test_malformed_entrypoints_say_what_is_wrong(entrypoint, problem):
    assert problem in entrypoint_problem(entrypoint)


@pytest.mark.parametrize("schema, problem", [
    ({"type": "object", "properties": {"x": {"$ref": "http://169.254.169.254/schema"}}},
     "may only point inside the schema"),
    ({"type": "object", "properties": {"x": {"$dynamicRef": "https://example.org/s.json"}}},
     "may only point inside the schema"),
    ({"type": "object", "properties": {"x": {"anyOf": [{"anyOf": []}]}}}, "not a valid"),
    ({"type": "object", "properties": {"x": {"items": _deep}}}, "nested more than 32 levels"),
], ids=["remote-ref", "remote-dynamic-ref", "empty-anyof", "deep"])
def test_a_schema_from_outside_is_bounded(schema, problem):
    assert problem in schema_problem(schema)


def test_regexes_in_a_schema_are_left_to_the_worker():
    # (a+)+$ takes exponential time in Python's regexes on this input
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"},
                                               "pattern": {"type": "integer"}}}

    check_parameters(schema, {"name": "a" * 40 + "!"}, "f")
    with pytest.raises(InvalidInput, match="parameter 'pattern' of flow 'f'"):
        check_parameters(schema, {"pattern": "x"}, "f")


def test_a_reference_outside_the_schema_is_never_fetched(http_server_hits):
    url, hits = http_server_hits
    schema = {"type": "object", "properties": {"x": {"$ref": url}}}

    with pytest.raises(InvalidInput, match="parameter schema of flow 'f' cannot be used"):
        check_parameters(schema, {"x": 1}, "f")
    assert hits == []


@pytest.fixture()
def http_server_hits():
    """A loopback HTTP server answering a schema, and the paths asked of it."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/schema.json", hits
    finally:
        server.shutdown()
        thread.join(timeout=5)

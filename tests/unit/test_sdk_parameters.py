"""Binding and validating flow parameters, and storing them as JSON."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from flows import flow
from flows.parameters import bind_arguments, call_arguments, jsonable, jsonable_parameters
from services.core.errors import InvalidInput


@flow
def train(month: str, rows: int = 100, rate: float = 0.1, tags: list[str] | None = None) -> None:
    """Train a model."""


def test_a_call_binds_to_names_with_defaults_applied():
    assert bind_arguments(train.signature, ("2023-01",), {"rate": 0.5}) == {
        "month": "2023-01", "rows": 100, "rate": 0.5, "tags": None}


def test_a_bad_call_raises_type_error_as_python_does():
    with pytest.raises(TypeError):
        bind_arguments(train.signature, (), {"nope": 1})


def test_parameters_by_name_turn_back_into_a_call():
    def fn(a, /, b, *args, c=1, **kwargs):
        return a, b, args, c, kwargs

    import inspect

    parameters = bind_arguments(inspect.signature(fn), (1, 2, 3), {"c": 4, "d": 5})
    args, kwargs = call_arguments(inspect.signature(fn), parameters)
    assert fn(*args, **kwargs) == (1, 2, (3,), 4, {"d": 5})


def test_valid_parameters_are_coerced_to_their_annotations():
    assert train.validate_parameters({"month": "2023-01", "rows": "250"}) == {
        "month": "2023-01", "rows": 250}


def test_an_unknown_parameter_is_named_with_the_accepted_ones():
    with pytest.raises(InvalidInput, match=r"parameter 'row' of flow 'train': the flow has no such parameter.*rows"):
        train.validate_parameters({"month": "x", "row": 1})


def test_a_missing_required_parameter_is_named():
    with pytest.raises(InvalidInput, match=r"parameter 'month' of flow 'train': missing"):
        train.validate_parameters({"rows": 1})


def test_a_parameter_of_the_wrong_type_is_named_with_the_value():
    with pytest.raises(InvalidInput, match=r"parameter 'rows' of flow 'train': .*integer.*'many'"):
        train.validate_parameters({"month": "x", "rows": "many"})


def test_parameters_must_be_a_mapping():
    with pytest.raises(InvalidInput, match="mapping"):
        train.validate_parameters(["month"])  # type: ignore[arg-type]


def test_flows_with_var_keyword_accept_any_name():
    @flow
    def anything(**options):
        return options

    assert anything.validate_parameters({"x": 1}) == {"x": 1}


def test_annotations_pydantic_cannot_check_are_left_alone():
    class Opaque:
        pass

    @flow
    def takes(thing: Opaque, n: int = 1):
        return thing

    value = Opaque()
    assert takes.validate_parameters({"thing": value})["thing"] is value


def test_json_data_is_stored_as_is():
    assert jsonable({"a": [1, 2.5, "x", None, True]}) == {"a": [1, 2.5, "x", None, True]}


def test_common_types_become_json():
    assert jsonable_parameters({"when": dt.date(2023, 1, 2), "path": Path("/data/x.parquet"),
                                "span": dt.timedelta(minutes=1), "ids": (1, 2)}) == {
        "when": "2023-01-02", "path": "/data/x.parquet", "span": 60.0, "ids": [1, 2]}


def test_non_finite_floats_become_null():
    assert jsonable([1.0, math.nan]) == [1.0, None]


def test_other_objects_become_a_short_repr():
    class Frame:
        def __repr__(self):
            return "<Frame 3 rows>"

    assert jsonable(Frame()) == "<Frame 3 rows>"


def test_large_values_become_a_short_summary():
    assert jsonable(list(range(100_000))) == "<list of 100000 items>"
    value = jsonable("x" * 20_000)
    assert isinstance(value, str) and len(value) <= 200 and value.endswith("...")


def test_names_a_var_keyword_flow_does_not_declare_go_to_its_keywords():
    @flow
    def anything(first, **options):
        return first, options

    args, kwargs = call_arguments(anything.signature, {"first": 1, "x": 2})
    assert anything.fn(*args, **kwargs) == (1, {"x": 2})


@flow
def boosted(rounds: Annotated[int, Field(ge=1)] = 100) -> None:
    """Train for some rounds."""


def test_limits_written_into_an_annotation_are_enforced():
    assert boosted.validate_parameters({"rounds": "5"}) == {"rounds": 5}
    with pytest.raises(InvalidInput, match="parameter 'rounds' of flow 'boosted'"):
        boosted.validate_parameters({"rounds": 0})

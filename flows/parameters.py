"""Flow and task parameters: binding calls to signatures, validating parameters
given as data (deployments, the API, the CLI), and making them storable as JSON.

pydantic is imported only when a flow's parameters are validated, never at import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import inspect
import json
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from services.core.parameter_schemas import check_parameter_names, parameter_error

MAX_PARAMETER_JSON_CHARS = 10_000
MAX_JSON_ITEMS = 1_000
MAX_REPR_CHARS = 200


def bind_arguments(signature: inspect.Signature, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied (TypeError as a call would)."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def call_arguments(signature: inspect.Signature,
                   parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Positional and keyword arguments that call a function with `parameters` by name."""
    ordered = {name: parameters[name] for name in signature.parameters if name in parameters}
    extra = {name: value for name, value in parameters.items()
             if name not in signature.parameters}
    var_keyword = next((name for name, p in signature.parameters.items()
                        if p.kind is p.VAR_KEYWORD), None)
    if extra and var_keyword is not None:
        ordered[var_keyword] = {**ordered.get(var_keyword, {}), **extra}
    bound = inspect.BoundArguments(signature, ordered)  # type: ignore[arg-type]
    return bound.args, bound.kwargs


def check_names(signature: inspect.Signature, parameters: object, flow_name: str) -> None:
    """InvalidInput naming the first unknown or missing parameter (or parameters that are
    not a mapping), with the messages of a check against the flow's parameter schema."""
    accepted = signature.parameters
    names = [name for name, p in accepted.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [name for name in names if accepted[name].default is accepted[name].empty]
    positional_only = [name for name in required
                       if accepted[name].kind is accepted[name].POSITIONAL_ONLY]
    check_parameter_names(parameters, flow_name, accepted=names,
                          required=[name for name in required if name not in positional_only],
                          takes_any=any(p.kind is p.VAR_KEYWORD for p in accepted.values()))
    for name in positional_only:  # what the schema cannot say: it has no positions
        raise parameter_error(flow_name, name, "positional-only, so it cannot be given by name")


class ParameterModel:
    """The pydantic model of a function's annotated parameters, built on first use."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._fn = fn
        self._model: Any = None
        self._skipped: set[str] = set()

    def validate(self, parameters: dict[str, Any], flow_name: str) -> dict[str, Any]:
        """The parameters with annotated ones validated and coerced (e.g. "3" -> 3 for int)."""
        from pydantic import ValidationError

        model = self._build()
        checked = {name: value for name, value in parameters.items()
                   if name in model.model_fields}
        try:
            try:
                validated = model.model_validate(checked)
            except ValidationError as error:
                huge = {item["loc"][0] for item in error.errors()
                        if item["type"] == "int_parsing_size" and item["loc"]}
                if not huge:
                    raise
                checked = {name: _huge_floats_as_ints(value) if name in huge else value
                           for name, value in checked.items()}
                validated = model.model_validate(checked)
        except ValidationError as error:
            first = error.errors()[0]
            name = ".".join(str(part) for part in first["loc"]) or "?"
            got = repr(first.get("input"))[:MAX_REPR_CHARS]
            raise parameter_error(flow_name, name, f"{first['msg']} (got {got})") from None
        result = dict(parameters)
        for name in checked:
            result[name] = getattr(validated, name)
        return result

    def _build(self) -> Any:
        if self._model is not None:
            return self._model
        import typing

        from pydantic import (
            ConfigDict,
            PydanticUndefinedAnnotation,
            PydanticUserError,
            create_model,
        )

        signature = inspect.signature(self._fn)
        try:
            # with their extras, so `Annotated[int, Field(ge=1)]` keeps its limits
            hints = typing.get_type_hints(self._fn, include_extras=True)
        # evaluating the annotations runs the flow module's own expressions, which may
        # raise anything: an annotation that does not resolve is left unchecked
        except Exception:  # noqa: BLE001 - user code
            hints = {}
        fields: dict[str, Any] = {}
        for name, parameter in signature.parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints.get(name, Any)
            default = ... if parameter.default is parameter.empty else parameter.default
            fields[name] = (annotation, default)
        config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())
        try:
            self._model = create_model(f"{self._fn.__name__}_parameters", __config__=config,
                                       **_safe_field_names(fields))
        except (PydanticUserError, PydanticUndefinedAnnotation, TypeError):
            # an annotation pydantic cannot check: validate names only, types as given
            self._model = create_model(f"{self._fn.__name__}_parameters", __config__=config,
                                       **_safe_field_names({n: (Any, d) for n, (_, d)
                                                           in fields.items()}))
        return self._model


# pydantic reads a float as an int only within 64 bits; past them it refuses even an
# integral float (2.0**63), which JSON Schema, and so the recorded schema, takes as an integer
_INT64_LIMIT = 2.0**63


def _huge_floats_as_ints(value: Any) -> Any:
    """`value` with each float past 64 bits (all of them integral) as the int it equals, so
    that what the parameter schema accepts, the flow accepts; a float parameter reads the
    same number back."""
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= _INT64_LIMIT:
        return int(value)
    if isinstance(value, dict):
        return {key: _huge_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_huge_floats_as_ints(item) for item in value]
    return value


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON schema of a function's parameters, from its signature and annotations: what
    a deployment records so that processes without the flow's code can check parameters.

    A parameter whose annotation has no JSON schema (an arbitrary class) accepts any value;
    a default that is not JSON data is left out (the parameter stays optional)."""
    import typing

    from pydantic import TypeAdapter

    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    # evaluating the annotations runs the flow module's own expressions, which may raise
    # anything: an annotation that does not resolve is left unchecked
    except Exception:  # noqa: BLE001 - user code
        hints = {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    definitions: dict[str, Any] = {}
    takes_any = False
    for name, parameter in signature.parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_any = True
            continue
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        properties[name] = _annotation_schema(TypeAdapter, hints.get(name), definitions)
        if parameter.default is parameter.empty:
            required.append(name)
        else:
            default = _json_default(parameter.default)
            if default is not _NOT_JSON:
                properties[name]["default"] = default
    schema: dict[str, Any] = {"title": getattr(fn, "__name__", "parameters"), "type": "object",
                              "properties": properties}
    if required:
        schema["required"] = required
    if not takes_any:
        schema["additionalProperties"] = False
    if definitions:
        schema["$defs"] = definitions
    return schema


_NOT_JSON: Any = object()


def _json_default(value: Any) -> Any:
    """`value` as JSON data when it is JSON data already (a path or a model is not)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return _NOT_JSON
    return json.loads(text) if len(text) <= MAX_PARAMETER_JSON_CHARS else _NOT_JSON


def _annotation_schema(adapter: Any, annotation: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    from pydantic import PydanticUndefinedAnnotation, PydanticUserError

    if annotation is None or annotation is Any:
        return {}
    try:
        schema = adapter(annotation).json_schema(ref_template="#/$defs/{model}")
    except (PydanticUserError, PydanticUndefinedAnnotation, TypeError):
        return {}  # no JSON schema for it (an arbitrary class): any value
    definitions.update(schema.pop("$defs", {}))
    return schema


def _safe_field_names(fields: dict[str, Any]) -> dict[str, Any]:
    # pydantic reserves names starting with an underscore; those are passed through unchecked
    return {name: spec for name, spec in fields.items() if not name.startswith("_")}


def jsonable(value: Any, max_chars: int = MAX_PARAMETER_JSON_CHARS) -> Any:
    """`value` as JSON data for a stored record; a short repr when it is not JSON data
    (a DataFrame, a model) or too large."""
    if isinstance(value, (list, tuple, set, frozenset, dict)) and len(value) > MAX_JSON_ITEMS:
        return f"<{type(value).__name__} of {len(value)} items>"  # too big to store anyway
    try:
        text = json.dumps(value, default=_encode_known, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        try:
            text = json.dumps(_replace_nan(value), default=_encode_known, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return _short_repr(value)
    if len(text) > max_chars:
        return _short_repr(value)
    return json.loads(text)


def jsonable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    return {str(name): jsonable(value) for name, value in parameters.items()}


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value's own __repr__ may raise anything
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= MAX_REPR_CHARS else text[: MAX_REPR_CHARS - 3] + "..."


def _replace_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _replace_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_nan(item) for item in value]
    return value


def _encode_known(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, PurePath, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()  # numpy scalars
    raise TypeError(f"{type(value).__name__} is not JSON data")

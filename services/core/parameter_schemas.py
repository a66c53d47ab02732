"""Checking a flow's parameters against the JSON schema recorded on its deployment: what
the API, the scheduler and run control use where the flow's code is not (they never
import it). The schema is built from the flow's signature by `flows.parameters`.

Implementation notes:
1. Names are checked first, by `check_parameter_names`, which the SDK's check of a
   signature calls too, and every message is made by `parameter_error`: a mistake
   reads the same wherever it is caught (the SDK, the API, the CLI, an action).
2. Values are checked as JSON, strictly: "3" is not an integer here. The worker's
   check (pydantic, lax) accepts everything this one does.
3. `partial` checks a deployment's defaults: the required parameters may come with each
   run, so a missing one is not an error there.
4. jsonschema is imported on first use: most processes never check a schema.
5. The schema may come from anyone allowed to register a deployment, so it is bounded
   (nesting, size), may only refer inside itself (`$ref` "#/..."; jsonschema would
   fetch any other URL, and is given an empty registry besides), and its regexes
   (`pattern`, `patternProperties`) are not run here: Python's regexes can take
   exponential time, and the worker checks them with pydantic, whose are linear.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from services.core.errors import InvalidInput

MAX_MESSAGE_CHARS = 300
MAX_SCHEMA_DEPTH = 32
MAX_SCHEMA_CHARS = 50_000
# keywords whose values are subschemas, a list of them, or a mapping of them (note 5)
_SUBSCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
              "propertyNames", "additionalItems", "unevaluatedItems", "unevaluatedProperties")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "dependentSchemas")
_REGEX_KEYWORDS = ("pattern", "patternProperties")
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


class InvalidParameter(InvalidInput):
    """A parameter that does not fit a flow's schema; `name` is its path ('a.b' inside one)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a JSON schema of an object of parameters, or None."""
    import json

    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if _depth(schema) > MAX_SCHEMA_DEPTH:
        return f"nested more than {MAX_SCHEMA_DEPTH} levels deep"
    if len(json.dumps(schema, default=str)) > MAX_SCHEMA_CHARS:
        return f"longer than {MAX_SCHEMA_CHARS} characters as JSON"
    if schema.get("type") != "object":
        return "the schema of a flow's parameters must have \"type\": \"object\""
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.path)
        return f"not a valid JSON schema{f' at {where}' if where else ''}: {error.message}"
    if not isinstance(schema.get("properties", {}), dict):
        return "'properties' must be an object"
    outside = next((ref for ref in _refs(schema) if not str(ref).startswith("#")), None)
    if outside is not None:
        return f"a reference may only point inside the schema ('#/...'), not to '{outside}'"
    return None


def _depth(value: Any) -> int:
    """How deeply `value` nests, counted without recursion (it may be deep on purpose)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_SCHEMA_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _refs(value: Any) -> list[Any]:
    if isinstance(value, dict):
        own = [value[key] for key in _REFERENCES if key in value]
        return own + [ref for child in value.values() for ref in _refs(child)]
    if isinstance(value, list):
        return [ref for child in value for ref in _refs(child)]
    return []


def _without_regexes(schema: Any) -> Any:
    """`schema` without the keywords that run regexes (note 5); a mapping with
    `patternProperties` also loses `additionalProperties`, which would depend on them."""
    if not isinstance(schema, dict):
        return schema
    result = {key: value for key, value in schema.items() if key not in _REGEX_KEYWORDS}
    if "patternProperties" in schema:
        result.pop("additionalProperties", None)
    for key in _SUBSCHEMA:
        if key in result:
            result[key] = _without_regexes(result[key]) if isinstance(result[key], dict) \
                else [_without_regexes(item) for item in result[key]] \
                if isinstance(result[key], list) else result[key]
    for key in _SUBSCHEMA_LISTS:
        if isinstance(result.get(key), list):
            result[key] = [_without_regexes(item) for item in result[key]]
    for key in _SUBSCHEMA_MAPS:
        if isinstance(result.get(key), dict):
            result[key] = {name: _without_regexes(item) for name, item in result[key].items()}
    return result


def parameter_error(flow_name: str, name: str, problem: str) -> InvalidParameter:
    """The error of one parameter that does not fit its flow, worded the same everywhere
    (and carrying the parameter's name, so that the API's 422 points at its field)."""
    return InvalidParameter(name, f"parameter '{name}' of flow '{flow_name}': {problem}")


def check_parameter_names(parameters: object, flow_name: str, *, accepted: Collection[str],
                          required: Iterable[str], takes_any: bool) -> None:
    """InvalidInput when `parameters` is not a mapping, names a parameter the flow does not
    take (unless it takes any), or leaves out one it requires (note 1)."""
    if not isinstance(parameters, dict):
        raise InvalidInput(f"parameters of flow '{flow_name}' must be a mapping of names "
                           f"to values, not {type(parameters).__name__}")
    if not takes_any:
        for name in parameters:
            if name not in accepted:
                raise parameter_error(flow_name, name, "the flow has no such parameter (it "
                                      f"takes: {', '.join(accepted) or 'none'})")
    for name in required:
        if name not in parameters:
            raise parameter_error(flow_name, name, "missing; the flow requires it")


def check_parameters(schema: dict[str, Any], parameters: dict[str, Any], flow_name: str, *,
                     partial: bool = False) -> None:
    """InvalidInput naming the first parameter that does not fit `schema` (see notes)."""
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from referencing import Registry

    check_parameter_names(parameters, flow_name, accepted=schema.get("properties", {}),
                          required=() if partial else schema.get("required", []),  # note 3
                          takes_any=schema.get("additionalProperties", True) is not False)
    checked = _without_regexes({key: value for key, value in schema.items()
                                if key != "required"})
    try:
        # an empty registry: a reference outside the schema is never fetched (note 5)
        validator = validator_for(checked)(checked, registry=Registry())
        errors = list(validator.iter_errors(parameters))
    # the schema is input that jsonschema walks: whatever that raises (a reference that does
    # not resolve inside it, a keyword of the wrong type) is the schema's fault, said as such
    except Exception as error:  # noqa: BLE001 - user input, reported as InvalidInput
        raise InvalidInput(f"the parameter schema of flow '{flow_name}' cannot be used: "
                           f"{type(error).__name__}: {_shorten(str(error))}") from None
    if errors:
        order = {name: index for index, name in enumerate(parameters)}

        def position(error: Any) -> int:
            return order.get(error.absolute_path[0], -1) if error.absolute_path else -1

        first = min(position(error) for error in errors)
        # the most precise of that parameter's errors (inside an anyOf: the branch it meant)
        error = best_match(error for error in errors if position(error) == first)
        name = ".".join(str(part) for part in error.absolute_path) or "?"
        raise parameter_error(flow_name, name, _shorten(error.message))


def _shorten(text: str) -> str:
    # jsonschema's messages quote the value, which may be large
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."

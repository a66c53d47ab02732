"""`-p key=value` options: the value is JSON when it parses as JSON, else the text itself."""

from __future__ import annotations

import json
from typing import Any

from services.core.errors import InvalidInput


def parse_value(raw: str) -> Any:
    """`3` -> 3, `true` -> True, `[1, 2]` -> [1, 2], `{"a": 1}` -> dict, `2023-01` -> "2023-01"."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_parameters(items: list[str] | None) -> dict[str, Any]:
    """The parameters given as `key=value` items; a key given twice keeps the last value."""
    parameters: dict[str, Any] = {}
    for item in items or []:
        key, separator, raw = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise InvalidInput(f"parameter '{item}' is not of the form key=value")
        parameters[key] = parse_value(raw)
    return parameters

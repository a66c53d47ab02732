"""Where a field is in a JSON or YAML text: the line (and column) of `trigger.threshold`
in a file, so that an error can name it as a compiler would (`file.json:7: trigger.threshold:
...`) and an editor can mark it.

A small scanner over the JSON text (the text already parsed, so it is valid JSON)
records the line and column where each member's key, or each item, starts; a text that is not
JSON is composed as YAML and the same lines come from the nodes' marks. Paths are written
as `automations.loading` writes them (`actions[0].type`, `[1].name`); a label name
may hold dots (`match.resource.id`), so the longest known path that prefixes the
one asked for wins.
"""

from __future__ import annotations

import bisect
import re
from json.decoder import scanstring

_SCALAR = re.compile(r'-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null')
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [index for index, char in enumerate(text) if char == "\n"]
        self.lines: dict[str, tuple[int, int]] = {}

    def line(self, position: int) -> tuple[int, int]:
        """(line, column) of a character offset, both 1-based."""
        line = bisect.bisect_right(self.newlines, position - 1)
        start = self.newlines[line - 1] + 1 if line else 0
        return line + 1, position - start + 1

    def skip(self, position: int) -> int:
        return _WHITESPACE.match(self.text, position).end()

    def value(self, position: int, path: str) -> int:
        position = self.skip(position)
        self.lines.setdefault(path, self.line(position))
        char = self.text[position]
        if char == "{":
            return self.members(position + 1, path)
        if char == "[":
            return self.items(position + 1, path)
        if char == '"':
            return scanstring(self.text, position + 1)[1]
        match = _SCALAR.match(self.text, position)
        if match is None:
            raise ValueError(f"unexpected {char!r} at {position}")
        return match.end()

    def members(self, position: int, path: str) -> int:
        position = self.skip(position)
        if self.text[position] == "}":
            return position + 1
        while True:
            position = self.skip(position)
            key_line = self.line(position)
            key, position = scanstring(self.text, position + 1)
            member = f"{path}.{key}" if path else key
            self.lines[member] = key_line
            position = self.skip(position) + 1  # the colon
            position = self.skip(self.value(position, member))
            if self.text[position] == "}":
                return position + 1
            position += 1  # the comma

    def items(self, position: int, path: str) -> int:
        position = self.skip(position)
        if self.text[position] == "]":
            return position + 1
        index = 0
        while True:
            position = self.skip(self.value(position, f"{path}[{index}]"))
            if self.text[position] == "]":
                return position + 1
            position += 1
            index += 1


def _yaml_lines(text: str) -> dict[str, tuple[int, int]] | None:
    """The (line, column) of every key and item of a YAML text, by path; None when it does
    not compose."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    lines: dict[str, tuple[int, int]] = {}

    def walk(node: yaml.Node, path: str) -> None:
        lines.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                member = f"{path}.{key.value}" if path else str(key.value)
                lines[member] = (key.start_mark.line + 1, key.start_mark.column + 1)
                walk(value, member)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    if root is not None:
        walk(root, "")
    return lines


def _lines(text: str) -> dict[str, tuple[int, int]] | None:
    scanner = _Scanner(text)
    try:
        scanner.value(0, "")
    except (ValueError, IndexError):
        return _yaml_lines(text)
    return scanner.lines


def line_of(text: str, path: str) -> int | None:
    """The line where the field at `path` starts in the JSON or YAML `text` (1-based), if
    found."""
    place = position_of(text, path)
    return place[0] if place else None


def position_of(text: str, path: str) -> tuple[int, int] | None:
    """(line, column), 1-based, where the field at `path` starts in the JSON or YAML `text`
    (or the nearest enclosing field that is there), if found."""
    lines = _lines(text)
    if lines is None:
        return None
    best = None
    for known, line in lines.items():
        if known and (path == known or path.startswith((known + ".", known + "["))):
            if best is None or len(known) > len(best[0]):
                best = (known, line)
    if best is None:
        return (1, 1) if path == "" else None
    return best[1]

"""Reading a JSON or YAML document: the one loader behind automation files (the
examples' and the demo's too), deployment files, notifier configurations and Prefect
exports, so that every file gives the same errors (file, line, column) everywhere.
`load_document_file` reads and parses a file; `parse_document` parses text that came
another way (an HTTP body).

The format comes from the name: `.yaml` and `.yml` are YAML, anything else is JSON.
Both refuse a key given twice in one object (JSON's last-one-wins and YAML's silent
override hide typos). YAML is read with the safe loader only: no Python objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from automations.errors import FieldError, MalformedDocument, UnreadableFile

YAML_SUFFIXES = (".yaml", ".yml")
# A YAML alias repeats its anchor's node: nine aliases of nine aliases of ... turn a 1 KB
# document into 10^9 values once walked (the "billion laughs"). A document whose aliases
# expand past this many nodes is refused before it is built.
MAX_YAML_NODES = 100_000
TOO_DEEP = "the document nests objects and lists too deeply"
DOCUMENT_SUFFIXES = (".json", *YAML_SUFFIXES)


class DocumentSyntaxError(MalformedDocument):
    """Text that does not parse as its format; `line` and `column` are 1-based (0: unknown)."""

    def __init__(self, source: str, format_name: str, problem: str, line: int = 0,
                 column: int = 0) -> None:
        self.format_name = format_name
        self.problem = problem
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line else ""
        super().__init__(source, [FieldError("", f"{where}{problem}")])


class EmptyDocument(MalformedDocument):
    """A document with nothing but white space in it."""

    def __init__(self, source: str) -> None:
        super().__init__(source, [FieldError("", "the document is empty")])


class DocumentFile(NamedTuple):
    """A JSON or YAML file as read: its name, its text (to find the line of a field in)
    and the parsed document."""

    path: str
    text: str
    document: Any


def load_document_file(path: str | Path) -> DocumentFile:
    """Read and parse a JSON or YAML file (format by its name). Errors name the file:
    UnreadableFile (missing, unreadable, not UTF-8), DocumentSyntaxError (with the line
    and column), EmptyDocument, MalformedDocument (nested too deeply, aliases that expand
    too far)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnreadableFile(f"{name}: no such file") from None
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") \
            from None
    except OSError as error:
        raise UnreadableFile(f"{name}: cannot be read ({error.strerror})") from None
    return DocumentFile(name, text, parse_document(text, name))


def is_yaml(name: str) -> bool:
    """Whether a document of that (file) name is YAML."""
    return name.lower().endswith(YAML_SUFFIXES)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key '{key}' in an object")
        seen[key] = value
    return seen


def _yaml_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """The safe loader, refusing a key given twice in one mapping."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            keys: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in keys:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}' in a mapping", key_node.start_mark)
                keys.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _check_expansion(root: Any, name: str) -> None:
    """Refuse a YAML node graph whose aliases expand past MAX_YAML_NODES values."""
    import yaml

    sizes: dict[int, int] = {}  # by node identity: an alias is the very node it names

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        else:
            total = 1
        if total > MAX_YAML_NODES:
            raise MalformedDocument(name, [FieldError(
                "", f"its aliases expand to more than {MAX_YAML_NODES} values")])
        sizes[id(node)] = total
        return total

    if root is not None:
        size(root)


def parse_document(text: str, name: str) -> Any:
    """The JSON or YAML document in `text` (format by `name`); DocumentSyntaxError naming
    the line and column of a syntax error, EmptyDocument when the text is empty."""
    if not text.strip():
        raise EmptyDocument(name)
    if not is_yaml(name):
        try:
            return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        except json.JSONDecodeError as error:
            raise DocumentSyntaxError(name, "JSON", error.msg, error.lineno, error.colno) \
                from None
        except ValueError as error:
            raise DocumentSyntaxError(name, "JSON", str(error)) from None
        except RecursionError:
            raise MalformedDocument(name, [FieldError("", TOO_DEEP)]) from None
    import yaml

    try:
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), name)
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except RecursionError:
        raise MalformedDocument(name, [FieldError("", TOO_DEEP)]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "does not parse"
        if mark is None:
            raise DocumentSyntaxError(name, "YAML", problem) from None
        raise DocumentSyntaxError(name, "YAML", problem, mark.line + 1, mark.column + 1) \
            from None
    except yaml.YAMLError as error:
        raise DocumentSyntaxError(name, "YAML", str(error)) from None

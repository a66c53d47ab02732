"""Deployments from a JSON or YAML file: one deployment, a list of them, or
`{"deployments": [...]}`, read by the one document loader (automations.documents).
Errors name the file and the line, and for validation errors the field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.core.errors import InvalidInput, field_path
from services.core.models import DeploymentCreate


class DeploymentFileError(InvalidInput):
    """A deployment file that cannot be read, parsed or validated; the message says where."""


def is_deployment_file(target: str) -> bool:
    """Whether a `deployment register` argument names a file rather than a deployment."""
    from automations.documents import DOCUMENT_SUFFIXES

    return target.lower().endswith(DOCUMENT_SUFFIXES) or "/" in target


def load_deployment_file(path: Path) -> list[DeploymentCreate]:
    """The deployments a file describes, validated."""
    from automations.documents import (
        DOCUMENT_SUFFIXES,
        DocumentSyntaxError,
        EmptyDocument,
        load_document_file,
    )
    from automations.errors import AutomationError

    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise DeploymentFileError(f"{path}: give a .json, .yaml or .yml file")
    try:
        loaded = load_document_file(path)
    except EmptyDocument:
        raise DeploymentFileError(f"{path}: the file is empty: it describes no deployment") \
            from None
    except DocumentSyntaxError as error:
        where = f"{path}:{error.line}:{error.column}" if error.line else str(path)
        raise DeploymentFileError(f"{where}: invalid {error.format_name}: {error.problem}") \
            from None
    except AutomationError as error:  # unreadable, or a document too deep or too large
        raise DeploymentFileError(str(error)) from None
    items, prefix = _items(path, loaded.document)
    if not items:
        raise DeploymentFileError(f"{path}: the file describes no deployment")
    return [validate_deployment(path, loaded.text, (*prefix, index) if prefix is not None else (), item)
            for index, item in enumerate(items)]


def _items(path: Path, document: Any) -> tuple[list[Any], tuple[str | int, ...] | None]:
    """The deployment objects, and the path of their list in the document (None: the root)."""
    if document is None:  # a YAML file of comments only
        raise DeploymentFileError(f"{path}: the file is empty: it describes no deployment")
    if isinstance(document, dict) and "deployments" in document:
        if not isinstance(document["deployments"], list):
            raise DeploymentFileError(f"{path}: 'deployments' must be a list")
        return document["deployments"], ("deployments",)
    if isinstance(document, list):
        return document, ()
    if isinstance(document, dict):
        return [document], None
    raise DeploymentFileError(f"{path}: expected a deployment object or a list of them")


def validate_deployment(path: Path, text: str, prefix: tuple[str | int, ...], item: Any) -> DeploymentCreate:
    from pydantic import ValidationError

    if not isinstance(item, dict):
        line = locate(text, prefix)
        where = f"{path}:{line}" if line else str(path)
        raise DeploymentFileError(f"{where}: {field_path(prefix) or 'document'}: "
                                  "expected a deployment object")
    try:
        return DeploymentCreate.model_validate(item)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            loc = (*prefix, *detail["loc"])
            line = locate(text, loc)
            where = f"{path}:{line}" if line else str(path)
            message = str(detail["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {field_path(loc)}: {message}")
        raise DeploymentFileError("; ".join(problems)) from None


def locate(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest node of `loc` present in the document (JSON is YAML
    enough for this), or None when the text does not compose as YAML."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((key, value) for key, value in node.value if key.value == str(part)),
                         None)
            if found is None:
                break
            # the key's line: for a nested object that is where it starts in the text
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line

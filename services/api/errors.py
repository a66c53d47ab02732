"""Errors as HTTP answers: flowkeeper's errors map to status codes, validation
errors name the field path, and no answer ever carries a traceback.

Every error body is an `ErrorBody`: a human-readable `detail` string and `errors`,
one `{"loc": [...], "msg": ...}` per problem of a validation error (empty for other
errors). Routes declare the statuses they can answer with `error_responses(...)`, so
the OpenAPI document describes the real bodies (FastAPI's own `HTTPValidationError`
is never advertised: every 422 is declared as an `ErrorBody`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException

from services.core.errors import (
    FlowkeeperError,
    InvalidInput,
    InvalidTransition,
    NameTaken,
    NotFound,
    RedisUnavailable,
    validation_messages,
)

log = logging.getLogger("flowkeeper.api")


class ErrorItem(BaseModel):
    """One problem of a request: where (e.g. `["body", "payload"]`) and what."""

    loc: list[str | int] = Field(description="the field path: body, query or path first")
    msg: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="what went wrong, for people")
    errors: list[ErrorItem] = Field(default_factory=list,
                                    description="one item per invalid field (422)")


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "No API token, or one that is not valid.",
    403: "The API token lacks the scope this route needs.",
    404: "No such object.",
    409: "The object is not in a state that allows this (e.g. the run already ended).",
    413: "The request body is larger than the limit (FLOWKEEPER_MAX_BODY_BYTES).",
    422: "The input does not validate; `errors` names each field path.",
    503: "Redis is unreachable; try again.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route (or router) for the error statuses it can answer."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
            for status in statuses}


# what every route can answer: the body limit runs before routing, any query or body can
# be invalid, and any route may find Redis unreachable
COMMON_ERROR_STATUSES = (413, 422, 503)

STATUS_BY_ERROR: list[tuple[type[FlowkeeperError], int]] = [
    (NotFound, 404),
    (NameTaken, 409),
    (InvalidInput, 422),
    (InvalidTransition, 409),
    (RedisUnavailable, 503),
]


def status_for(error: FlowkeeperError) -> int:
    """The HTTP status of one of flowkeeper's errors (500 for an unexpected kind)."""
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def validation_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field path and message of each error, without the input echoed back."""
    return [{"loc": list(error.get("loc", ())),
             "msg": str(error.get("msg", "")).removeprefix("Value error, ")} for error in errors]


def _validation_response(errors: Iterable[dict[str, Any]]) -> JSONResponse:
    cleaned = validation_errors(errors)
    detail = "; ".join(validation_messages(cleaned))
    return _error(422, detail, cleaned)


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, "errors": errors or []},
                        headers=headers)


async def _on_request_validation(_request: Request, error: RequestValidationError) -> JSONResponse:
    return _validation_response(error.errors())


async def _on_pydantic_validation(_request: Request, error: ValidationError) -> JSONResponse:
    # raised by a package function validating data built from the request
    return _validation_response(error.errors())


async def _on_flowkeeper_error(_request: Request, error: FlowkeeperError) -> JSONResponse:
    status = status_for(error)
    if status == 500:
        log.exception("unexpected flowkeeper error", exc_info=error)
    return _error(status, str(error))


async def _on_redis_error(_request: Request, error: redis.RedisError) -> JSONResponse:
    log.warning("Redis error while answering a request: %s", error)
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return _error(503, f"Redis is unreachable: {error}")
    return _error(500, "Redis refused the operation")


async def _on_http_error(_request: Request, error: HTTPException) -> JSONResponse:
    # Starlette's own answers (404 for an unknown path, 405, the body limit's 413)
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError | RecursionError):
        # FastAPI answers 400 for a body it cannot decode (not UTF-8, or nested too deeply
        # for the JSON reader) but 422 for one that is not JSON: all of them are a body that
        # is not acceptable JSON text, so all answer 422
        why = (f"not UTF-8 text ({cause.reason} at byte {cause.start})"
               if isinstance(cause, UnicodeDecodeError)
               else "objects and lists nest too deeply to be read")
        return _validation_response([{"loc": ("body",), "msg": why}])
    return _error(error.status_code, str(error.detail), headers=getattr(error, "headers", None))


async def _on_unexpected(_request: Request, error: Exception) -> JSONResponse:
    # the traceback goes to the server log, never to the client
    log.error("unexpected error while answering a request", exc_info=error)
    return _error(500, f"internal error ({type(error).__name__})")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_pydantic_validation)
    app.add_exception_handler(FlowkeeperError, _on_flowkeeper_error)
    app.add_exception_handler(redis.RedisError, _on_redis_error)
    app.add_exception_handler(Exception, _on_unexpected)

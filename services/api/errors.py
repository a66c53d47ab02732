"""Errors as HTTP answers: flowkeeper's errors map to status codes, validation
errors name the field path, and no answer ever carries a traceback.

Every error body has a human-readable `detail` string; validation errors add
`errors`, one `{"loc": [...], "msg": ...}` per problem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

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
    return JSONResponse(status_code=422, content={"detail": detail, "errors": cleaned})


async def _on_request_validation(_request: Request, error: RequestValidationError) -> JSONResponse:
    return _validation_response(error.errors())


async def _on_pydantic_validation(_request: Request, error: ValidationError) -> JSONResponse:
    # raised by a package function validating data built from the request
    return _validation_response(error.errors())


async def _on_flowkeeper_error(_request: Request, error: FlowkeeperError) -> JSONResponse:
    status = status_for(error)
    if status == 500:
        log.exception("unexpected flowkeeper error", exc_info=error)
    return JSONResponse(status_code=status, content={"detail": str(error)})


async def _on_redis_error(_request: Request, error: redis.RedisError) -> JSONResponse:
    log.warning("Redis error while answering a request: %s", error)
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return JSONResponse(status_code=503, content={"detail": f"Redis is unreachable: {error}"})
    return JSONResponse(status_code=500, content={"detail": "Redis refused the operation"})


async def _on_unexpected(_request: Request, error: Exception) -> JSONResponse:
    # the traceback goes to the server log, never to the client
    log.error("unexpected error while answering a request", exc_info=error)
    return JSONResponse(status_code=500,
                        content={"detail": f"internal error ({type(error).__name__})"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(ValidationError, _on_pydantic_validation)
    app.add_exception_handler(FlowkeeperError, _on_flowkeeper_error)
    app.add_exception_handler(redis.RedisError, _on_redis_error)
    app.add_exception_handler(Exception, _on_unexpected)

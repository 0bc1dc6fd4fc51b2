"""Every failure leaves the API as ``{"error": {"code", "message"}}`` with the right status — mapped here only."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cove.services import errors
from cove.wire import ErrorBody

log = logging.getLogger("cove.api")

_STATUS_BY_CLASS: list[tuple[type[errors.CoveServiceError], int]] = [
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidRequest, 400),
    (errors.PathNotAllowed, 403),
    (errors.Forbidden, 403),
    (errors.PayloadTooLarge, 413),
    (errors.SandboxStartFailed, 500),
    (errors.Unavailable, 503),
    (errors.Unauthorized, 401),
    (errors.QuotaExceeded, 429),
    (errors.RateLimited, 429),
    (errors.BadGateway, 502),
    (errors.GatewayTimeout, 504),
]
_STATUS_BY_CODE = {
    "already_exists": 409,
    "directory_not_empty": 409,
    "is_a_directory": 400,
    "not_a_directory": 400,
    "not_a_regular_file": 400,
    "disk_quota_exceeded": 413,
    "invalid_path": 400,
    "invalid_request": 400,
    "permission_denied": 403,
    "command_not_found": 400,
    "stdin_closed": 409,
    "unauthorized": 401,
    "validation_error": 422,
    "invalid_argument": 400,
    "bad_request": 400,
    "not_found": 404,
    "unknown_op": 400,
    "too_large": 413,
    "quota_exceeded": 429,
    "stopping": 409,
    "internal": 500,
}


def status_for(exc: errors.CoveServiceError) -> int:
    if exc.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[exc.code]
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def service_error_response(exc: errors.CoveServiceError) -> JSONResponse:
    response = error_response(status_for(exc), exc.code, exc.message)
    if isinstance(exc, errors.RateLimited):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


_SOURCES = {"body": "", "query": "query parameter", "path": "path parameter", "header": "header"}


def describe_validation(exc: RequestValidationError) -> str:
    return describe_validation_errors(exc.errors())


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line a user can act on: which field, and what is wrong with it."""
    parts = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ())]
        source = location.pop(0) if location and location[0] in _SOURCES else "body"
        field = ".".join(location)
        where = f"{_SOURCES[source]} {field}".strip() if field else "request body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.CoveServiceError)
    async def _service(_request: Request, exc: errors.CoveServiceError) -> JSONResponse:
        return service_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")


def document(app: FastAPI) -> None:
    """Say in ``/openapi.json`` what errors really look like: FastAPI describes its own 422 body
    (``HTTPValidationError``), which Cove replaces with ``ErrorBody`` like every other error, and every operation
    may fail with one (an unknown id, a stopped sandbox, a refused path)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body.pop("$defs", {}))
        schemas["ErrorBody"] = body
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses["422"] = {"description": "A field out of bounds, named in the message", **error}
                responses["default"] = {"description": "An error: {error: {code, message}}", **error}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

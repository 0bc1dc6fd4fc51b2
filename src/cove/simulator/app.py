"""The simulator's HTTP app: the Anthropic Messages API surface the Claude Code CLI uses, plus ``/_sim``.

All state lives in the app instance (a request counter and the request log), so several simulators can run
in one process, e.g. one per test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cove.simulator.conversation import Conversation, parse_conversation
from cove.simulator.recorder import RequestLog, make_entry
from cove.simulator.script import ERROR_TYPES_BY_STATUS, Failure, TextReply, decide, describe
from cove.simulator.wire import MessageMeta, estimate_tokens, message_json, stream_events, truncate_to

MODELS: list[dict[str, str]] = [
    {"id": "claude-opus-5-5", "display_name": "Claude Opus 5.5", "created_at": "2026-06-01T00:00:00Z"},
    {"id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
    {"id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-01T00:00:00Z"},
]


@dataclass
class SimulatorState:
    """Per-app mutable state; nothing in it influences what a conversation is answered."""

    log: RequestLog
    api_keys: frozenset[str] | None
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class ApiError(Exception):
    """An error to answer in Anthropic's shape."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def error_response(status: int, error_type: str, message: str) -> JSONResponse:
    """``{"type": "error", "error": {...}}``, as api.anthropic.com answers errors."""
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return JSONResponse(body, status_code=status)


def _api_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _check_key(state: SimulatorState, key: str | None) -> None:
    if key is None:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    if state.api_keys is not None and key not in state.api_keys:
        raise ApiError(401, "authentication_error", "invalid x-api-key")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_request_error", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "Request body must be a JSON object")
    return body


def _validate(body: dict[str, Any], *, needs_max_tokens: bool) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "invalid_request_error", "model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "invalid_request_error", "messages: at least one message is required")
    if needs_max_tokens:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "invalid_request_error", "max_tokens: Field required (a positive integer)")


def create_app(*, api_keys: Collection[str] | None = None, log_capacity: int = 1000) -> FastAPI:
    """Build a simulator app.

    ``api_keys``: when given, only these keys are accepted (others get a 401 ``authentication_error``), so
    a test can prove that a proxy swapped the key; by default any non-empty key is accepted.
    """
    state = SimulatorState(RequestLog(log_capacity), frozenset(api_keys) if api_keys is not None else None)
    app = FastAPI(title="Cove model simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.simulator = state

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error_type, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = ERROR_TYPES_BY_STATUS.get(exc.status_code, "invalid_request_error")
        return error_response(exc.status_code, error_type, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request_error", str(exc.errors()))

    async def _received(request: Request, *, needs_max_tokens: bool) -> tuple[dict[str, Any], Conversation]:
        """Authenticate, parse and validate; record failures too, so tests can see rejected calls."""
        key = _api_key(request)
        body: dict[str, Any] = {}
        try:
            _check_key(state, key)
            body = await _json_body(request)
            _validate(body, needs_max_tokens=needs_max_tokens)
        except ApiError as exc:
            _record(request, body, parse_conversation(body), key, f"error {exc.status} {exc.error_type}")
            raise
        return body, parse_conversation(body)

    def _record(
        request: Request, body: dict[str, Any], conversation: Conversation, key: str | None, instruction: str
    ) -> None:
        state.log.add(
            make_entry(
                path=request.url.path,
                body=body,
                conversation=conversation,
                headers=dict(request.headers),
                api_key=key,
                instruction=instruction,
            )
        )

    @app.post("/v1/messages", response_model=None)
    async def messages(request: Request) -> Response:
        body, conversation = await _received(request, needs_max_tokens=True)
        decision = decide(conversation)
        _record(request, body, conversation, _api_key(request), describe(decision))
        if isinstance(decision, Failure):
            return error_response(decision.status, decision.error_type, decision.message)
        number = next(state.counter)
        decision, stop_reason = truncate_to(decision, int(body["max_tokens"]))
        meta = MessageMeta(
            message_id=f"msg_sim_{number}",
            model=conversation.model,
            input_tokens=estimate_tokens(len(await request.body())),
            stop_reason=stop_reason,
        )
        headers = {"request-id": f"req_sim_{number}"}
        if body.get("stream"):
            return StreamingResponse(
                stream_events(decision, meta),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        if isinstance(decision, TextReply) and decision.slow_seconds:
            await asyncio.sleep(decision.slow_seconds)
        return JSONResponse(message_json(decision, meta), headers=headers)

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> dict[str, int]:
        body, conversation = await _received(request, needs_max_tokens=False)
        _record(request, body, conversation, _api_key(request), "count_tokens")
        return {"input_tokens": estimate_tokens(len(await request.body()))}

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        _check_key(state, _api_key(request))
        data = [{"type": "model", **model} for model in MODELS]
        return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}

    @app.get("/v1/models/{model_id}")
    async def get_model(model_id: str, request: Request) -> dict[str, str]:
        _check_key(state, _api_key(request))
        for model in MODELS:
            if model["id"] == model_id:
                return {"type": "model", **model}
        raise ApiError(404, "not_found_error", f"model: {model_id}")

    @app.api_route("/api/hello", methods=["GET", "HEAD"])
    async def hello() -> Response:
        """The CLI probes this for connectivity at start-up; answering avoids a 404 in every log."""
        return Response(status_code=200)

    @app.get("/_sim/requests")
    async def recorded(limit: int | None = None) -> list[dict[str, Any]]:
        return state.log.recent(limit)

    @app.delete("/_sim/requests")
    async def clear_recorded() -> dict[str, bool]:
        state.log.clear()
        return {"cleared": True}

    @app.get("/_sim/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app

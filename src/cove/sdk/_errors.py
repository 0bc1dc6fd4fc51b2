"""Typed errors: every API error arrives as one of these, chosen by its code, then by its HTTP status.

The table below is the one place that maps codes to classes; docs/names.md lists the same table, and both SDKs
are tested against it, so Python and TypeScript raise the same class, under the same name, for the same code. A
code this SDK does not know yet still gives the class of its status (or ``CoveError``) with its code and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CoveError(Exception):
    """Base of every error the SDK raises; ``code`` is the server's machine-readable code, ``status`` the HTTP
    status (``None`` for an error that came over a WebSocket or arose in the SDK)."""

    code = "error"  # the code of an error the SDK raises itself, when none is given

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.status = status


class AuthError(CoveError):
    """The API key is missing or wrong (HTTP 401)."""


class Forbidden(CoveError):
    """The key may not do this (HTTP 403)."""


class PathOutsideSandbox(Forbidden):
    """The path leaves the sandbox's files — by '..', an absolute host path, or a symlink (HTTP 403)."""


class PermissionDenied(Forbidden):
    """The sandbox's own user may not touch that file (HTTP 403)."""


class NetworkModeForbidden(Forbidden):
    """The server does not allow the network mode asked for (HTTP 403)."""


class NotFound(CoveError):
    """The thing named does not exist (HTTP 404)."""


class SandboxNotFound(NotFound):
    """No sandbox has that id."""


class CheckpointNotFound(NotFound):
    """No checkpoint has that id (or it was deleted)."""


class FileNotFound(NotFound):
    """No file at that path in the sandbox."""


class ProcessNotFound(NotFound):
    """No process with that id in the sandbox."""


class PtyNotFound(NotFound):
    """No terminal has that id in the sandbox (or it ended long ago and was forgotten)."""


class SessionNotFound(NotFound):
    """No agent session with that id in the sandbox."""


class ResumeNotFound(NotFound):
    """``resume`` named a Claude conversation Cove cannot find; nothing was started."""


class PermissionNotFound(NotFound):
    """The agent session never asked for a permission with that request id."""


class PortNotFound(NotFound):
    """The sandbox has not exposed that port (or it was closed)."""


class TurnNotFound(NotFound):
    """No completed turn with that number in the session, or its sandbox's files (and so its diff) are gone."""


class Conflict(CoveError):
    """The request clashes with the current state (HTTP 409)."""


class SandboxNotRunning(Conflict):
    """The sandbox has stopped; it cannot run commands, serve files or host agents any more."""


class SessionExited(Conflict):
    """The agent session has exited: it takes no more prompts, interrupts or configuration — or it exited
    before the turn being waited for completed."""

    code = "session_exited"


class AlreadyExists(Conflict):
    """Something already exists at that path."""


class DirectoryNotEmpty(Conflict):
    """The directory is not empty (remove it with ``recursive=True``)."""


class StdinClosed(Conflict):
    """The process's standard input is closed, or was never opened."""


class AlreadyResolved(Conflict):
    """The permission request was decided before: answered by a client (maybe another one), denied by the
    session's timeout, or by an interrupt. A request is decided once."""


class InvalidRequest(CoveError):
    """The request was malformed or failed validation (HTTP 400/422); the message names the field."""


class IsADirectory(InvalidRequest):
    """A file was expected, and the path is a directory."""


class NotADirectory(InvalidRequest):
    """A directory was expected, and the path is something else."""


class CommandNotFound(InvalidRequest):
    """The command's program does not exist in the sandbox."""


class PayloadTooLarge(CoveError):
    """The request's body is larger than the server accepts (HTTP 413)."""


class DiskQuotaExceeded(PayloadTooLarge):
    """The upload would take the sandbox past its ``disk_mb`` quota (HTTP 413); the sandbox keeps running."""


class QuotaExceeded(CoveError):
    """The key has as many sandboxes (or sessions) as its quota allows (HTTP 429)."""


class RateLimited(CoveError):
    """Too many requests in too short a time; try again later (HTTP 429)."""


class ServerError(CoveError):
    """The server failed to do what it should have been able to (HTTP 5xx)."""


class SandboxStartFailed(ServerError):
    """The sandbox could not be started (HTTP 500)."""


class SandboxUnavailable(ServerError):
    """The sandbox does not answer, e.g. it stopped during the request (HTTP 503)."""


class AgentUnavailable(SandboxUnavailable):
    """The agent session's runner does not answer (HTTP 503)."""


class CommandTimeout(CoveError):
    """A command ran past its timeout and was killed."""

    code = "command_timeout"


class ConnectionLost(CoveError):
    """The server could not be reached, or a stream broke and could not be resumed."""

    code = "connection_lost"


class AgentError(CoveError):
    """An ``error`` event of an agent session (``cli_error``, ``turn_failed``…); ``event`` is the event."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        super().__init__(str(event.get("message", "")), code=str(event.get("code") or "error"))
        self.event = event


# Every code the server sends, and the codes the SDK makes itself. Kept in step with docs/names.md by a test.
BY_CODE: dict[str, type[CoveError]] = {
    "unauthorized": AuthError,
    "forbidden": Forbidden,
    "path_outside_sandbox": PathOutsideSandbox,
    "permission_denied": PermissionDenied,
    "network_mode_forbidden": NetworkModeForbidden,
    "not_found": NotFound,
    "sandbox_not_found": SandboxNotFound,
    "checkpoint_not_found": CheckpointNotFound,
    "file_not_found": FileNotFound,
    "process_not_found": ProcessNotFound,
    "pty_not_found": PtyNotFound,
    "session_not_found": SessionNotFound,
    "resume_not_found": ResumeNotFound,
    "permission_not_found": PermissionNotFound,
    "port_not_found": PortNotFound,
    "turn_not_found": TurnNotFound,
    "key_not_found": NotFound,
    "token_not_found": NotFound,
    "conflict": Conflict,
    "sandbox_not_running": SandboxNotRunning,
    "session_exited": SessionExited,
    "stopping": SessionExited,
    "already_exists": AlreadyExists,
    "directory_not_empty": DirectoryNotEmpty,
    "stdin_closed": StdinClosed,
    "network_mode_fixed": Conflict,
    "already_resolved": AlreadyResolved,
    "invalid_request": InvalidRequest,
    "validation_error": InvalidRequest,
    "invalid_argument": InvalidRequest,
    "invalid_path": InvalidRequest,
    "invalid_frame": InvalidRequest,
    "bad_request": InvalidRequest,
    "unknown_op": InvalidRequest,
    "not_a_regular_file": InvalidRequest,
    "request_header_fields_too_large": InvalidRequest,
    "is_a_directory": IsADirectory,
    "not_a_directory": NotADirectory,
    "command_not_found": CommandNotFound,
    "payload_too_large": PayloadTooLarge,
    "too_large": PayloadTooLarge,
    "disk_quota_exceeded": DiskQuotaExceeded,
    "quota_exceeded": QuotaExceeded,
    "rate_limited": RateLimited,
    "internal_error": ServerError,
    "internal": ServerError,
    "io_error": ServerError,
    "protocol_error": ServerError,
    "guest_error": ServerError,
    "sandbox_start_failed": SandboxStartFailed,
    "sandbox_unavailable": SandboxUnavailable,
    "agent_unavailable": AgentUnavailable,
    "checkpoint_unavailable": SandboxUnavailable,
    "bad_gateway": ServerError,
    "port_not_listening": ServerError,
    "gateway_timeout": ServerError,
    "network_unavailable": ServerError,
    "command_timeout": CommandTimeout,
    "connection_lost": ConnectionLost,
}
# For a code not in the table: the class of its HTTP status.
BY_STATUS: dict[int, type[CoveError]] = {
    400: InvalidRequest,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    405: InvalidRequest,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
}


def error_from(status: int | None, code: str, message: str) -> CoveError:
    """The typed error for a server error ``{code, message}`` with an HTTP ``status`` (``None`` or 0 when it
    came over a WebSocket)."""
    cls = BY_CODE.get(code) or BY_STATUS.get(status or 0)
    if cls is None:
        cls = ServerError if status is not None and status >= 500 else CoveError
    return cls(message, code=code, status=status or None)

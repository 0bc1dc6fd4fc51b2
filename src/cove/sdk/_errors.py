"""Typed errors: every API error arrives as one of these, chosen by its code and status."""

from __future__ import annotations


class CoveError(Exception):
    """Base of every error the SDK raises; ``code`` is the server's machine-readable code."""

    def __init__(self, message: str, *, code: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class AuthError(CoveError):
    """The API key is missing or wrong (HTTP 401)."""


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


class Conflict(CoveError):
    """The request clashes with the current state, e.g. the sandbox is no longer running (HTTP 409)."""


class SandboxNotRunning(Conflict):
    """The sandbox has stopped; it cannot run commands or serve files any more."""


class InvalidRequest(CoveError):
    """The request was malformed or failed validation (HTTP 400/422); the message names the field."""


class PathOutsideSandbox(CoveError):
    """The path leaves the sandbox's files — by '..', an absolute host path, or a symlink (HTTP 403)."""


class CommandTimeout(CoveError):
    """A command ran past its timeout and was killed."""


class ConnectionLost(CoveError):
    """The server could not be reached, or a stream broke and could not be resumed."""


_BY_CODE: dict[str, type[CoveError]] = {
    "sandbox_not_found": SandboxNotFound,
    "checkpoint_not_found": CheckpointNotFound,
    "file_not_found": FileNotFound,
    "process_not_found": ProcessNotFound,
    "sandbox_not_running": SandboxNotRunning,
    "path_outside_sandbox": PathOutsideSandbox,
    "unauthorized": AuthError,
}
_BY_STATUS: dict[int, type[CoveError]] = {
    400: InvalidRequest,
    401: AuthError,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def error_from(status: int, code: str, message: str) -> CoveError:
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or CoveError
    return cls(message, code=code, status=status)

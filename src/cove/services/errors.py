"""Domain errors: each has a stable machine-readable ``code``; the API maps classes to statuses in one place."""

from __future__ import annotations


class CoveServiceError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class NotFound(CoveServiceError):
    code = "not_found"


class SandboxNotFound(NotFound):
    code = "sandbox_not_found"


class ProcessNotFound(NotFound):
    code = "process_not_found"


class PtyNotFound(NotFound):
    code = "pty_not_found"


class Conflict(CoveServiceError):
    code = "conflict"


class SandboxNotRunning(Conflict):
    code = "sandbox_not_running"


class InvalidRequest(CoveServiceError):
    code = "invalid_request"


class PathNotAllowed(CoveServiceError):
    code = "path_outside_sandbox"


class SandboxStartFailed(CoveServiceError):
    code = "sandbox_start_failed"


class Unavailable(CoveServiceError):
    code = "sandbox_unavailable"


class SessionNotFound(NotFound):
    code = "session_not_found"


class ResumeNotFound(NotFound):
    code = "resume_not_found"


class SessionExited(Conflict):
    code = "session_exited"


class PermissionNotFound(NotFound):
    code = "permission_not_found"


class TurnNotFound(NotFound):
    code = "turn_not_found"


class AlreadyResolved(Conflict):
    """A permission request answered (or timed out, or interrupted) before: it is decided once."""

    code = "already_resolved"


class AgentUnavailable(Unavailable):
    code = "agent_unavailable"


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"


class CheckpointUnavailable(Unavailable):
    code = "checkpoint_unavailable"


class PayloadTooLarge(CoveServiceError):
    code = "payload_too_large"


class DiskQuotaExceeded(PayloadTooLarge):
    code = "disk_quota_exceeded"


class Forbidden(CoveServiceError):
    code = "forbidden"


class NetworkModeForbidden(Forbidden):
    code = "network_mode_forbidden"


class NetworkUnavailable(Unavailable):
    code = "network_unavailable"

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


class Unauthorized(CoveServiceError):
    """A request without a credential this server takes (missing, unknown, expired or revoked)."""

    code = "unauthorized"


class QuotaExceeded(CoveServiceError):
    code = "quota_exceeded"


class RateLimited(CoveServiceError):
    code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after  # seconds, for the Retry-After header


class KeyNotFound(NotFound):
    code = "key_not_found"


class TokenNotFound(NotFound):
    code = "token_not_found"


class PortNotFound(NotFound):
    code = "port_not_found"


class BadGateway(CoveServiceError):
    """What a sandbox's app answered a preview request with cannot be passed on (malformed, too large, cut)."""

    code = "bad_gateway"


class PortNotListening(BadGateway):
    code = "port_not_listening"


class GatewayTimeout(CoveServiceError):
    code = "gateway_timeout"


class Forbidden(CoveServiceError):
    code = "forbidden"


class NetworkModeForbidden(Forbidden):
    code = "network_mode_forbidden"


class NetworkUnavailable(Unavailable):
    code = "network_unavailable"

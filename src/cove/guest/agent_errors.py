"""The agent runner's refusal of a control request, shared by the modules that carry requests out.

Standard library only (runs inside the sandbox).
"""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(Exception):
    """A control request the runner refuses; becomes ``{"ok": false, "error": {code, message}}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

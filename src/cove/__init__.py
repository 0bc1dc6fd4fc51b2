"""Cove: coding agents in isolated Linux sandboxes, as durable, steerable sessions.

The public SDK surface is re-exported here lazily, so that importing a server-side or in-sandbox module
(``cove.guest`` runs with nothing but the standard library) never pays for the SDK's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cove.sdk import (
        AsyncSandbox,
        AuthError,
        CommandTimeout,
        Conflict,
        CoveError,
        InvalidRequest,
        NotFound,
        PathOutsideSandbox,
        Sandbox,
        SandboxNotFound,
        SandboxNotRunning,
    )

__all__ = [
    "AsyncSandbox",
    "AuthError",
    "CommandTimeout",
    "Conflict",
    "CoveError",
    "InvalidRequest",
    "NotFound",
    "PathOutsideSandbox",
    "Sandbox",
    "SandboxNotFound",
    "SandboxNotRunning",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("cove.sdk"), name)
    raise AttributeError(f"module 'cove' has no attribute {name!r}")

"""Cove: coding agents in isolated Linux sandboxes, as durable, steerable sessions.

The public SDK surface (``cove.sdk``) is re-exported here lazily, so that importing a server-side or in-sandbox
module (``cove.guest`` runs with nothing but the standard library) never pays for the SDK's imports.

>>> from cove import Sandbox, SessionExited, format_event
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cove.sdk import *  # noqa: F403  (the names for type checkers; at run time __getattr__ finds them)


def __getattr__(name: str) -> Any:
    """``cove.X`` is ``cove.sdk.X`` for every name in ``cove.sdk.__all__`` (``__all__`` itself included)."""
    sdk = importlib.import_module("cove.sdk")
    if name == "__all__":
        return sdk.__all__
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'cove' has no attribute {name!r}")

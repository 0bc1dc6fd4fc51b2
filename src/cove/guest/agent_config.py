"""An agent session's configuration: ``config.json`` as the server writes it, and ``configure`` changes.

Standard library only (runs inside the sandbox).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIGURABLE",
    "IN_PLACE",
    "MAX_PERMISSION_TIMEOUT_S",
    "PERMISSION_MODES",
    "AgentConfig",
    "ConfigError",
]

PERMISSION_MODES = frozenset({"default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto"})

# What `configure` may change. IN_PLACE ones need no new CLI: the CLI takes a model and a permission mode on a live
# connection, and the permission timeout is the runner's own; every other change means reconnecting on the same
# conversation (the CLI reads them at start only).
CONFIGURABLE = (
    "model",
    "system_prompt",
    "allowed_tools",
    "disallowed_tools",
    "permission_mode",
    "max_turns",
    "cwd",
    "mcp_servers",
    "permission_timeout_s",
)
IN_PLACE = frozenset({"model", "permission_mode", "permission_timeout_s"})
MAX_PERMISSION_TIMEOUT_S = 7 * 24 * 3600


class ConfigError(ValueError):
    """A config field has the wrong type or value."""


def _check(name: str, value: Any) -> Any:
    """Validate one field; returns the value, normalised."""
    if name in ("model", "system_prompt", "prompt", "resume"):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string or null")
        if name == "resume" and value == "":
            return None
    elif name in ("allowed_tools", "disallowed_tools"):
        if value is not None and (not isinstance(value, list) or not all(isinstance(item, str) for item in value)):
            raise ConfigError(f"{name} must be a list of strings or null")
    elif name == "permission_mode":
        if value is None:
            return "bypassPermissions"
        if value not in PERMISSION_MODES:
            raise ConfigError(f"permission_mode must be one of {sorted(PERMISSION_MODES)}")
    elif name == "max_turns":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError("max_turns must be a positive integer or null")
    elif name == "cwd":
        if value is None:
            return "/workspace"
        if not isinstance(value, str) or not Path(value).is_absolute():
            raise ConfigError("cwd must be an absolute path")
    elif name == "permission_timeout_s":
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_PERMISSION_TIMEOUT_S
        ):
            raise ConfigError(f"permission_timeout_s must be a number of seconds in (0, {MAX_PERMISSION_TIMEOUT_S}]")
    elif name == "mcp_servers":
        if value is not None and not isinstance(value, dict):
            raise ConfigError("mcp_servers must be an object or null")
    elif name in ("fork", "await_seals"):
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be a boolean")
    return value


@dataclass
class AgentConfig:
    """What the runner was asked to run. ``None`` means the CLI's own default."""

    session_id: str
    prompt: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    allowed_tools: list[str] | None = None
    disallowed_tools: list[str] | None = None
    permission_mode: str = "bypassPermissions"
    max_turns: int | None = None
    cwd: str = "/workspace"
    mcp_servers: dict[str, Any] | None = None
    permission_timeout_s: float | None = None  # None: a permission request waits until it is answered
    resume: str | None = None
    fork: bool = False
    # The server records the workspace between turns: each turn waits for its word (``sealed``) to begin.
    await_seals: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        session_id = data.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise ConfigError("session_id must be a non-empty string")
        known = {f.name for f in dataclasses.fields(cls)} - {"session_id", "extra"}
        values = {name: _check(name, data[name]) for name in known if name in data}
        extra = {k: v for k, v in data.items() if k not in known and k != "session_id"}
        return cls(session_id=session_id, extra=extra, **values)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AgentConfig:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise ConfigError("config.json must hold a JSON object")
        return cls.from_dict(data)

    def effective(self) -> dict[str, Any]:
        """The config as events and ``status`` show it (the initial prompt and the ids left out)."""
        return {
            **{name: getattr(self, name) for name in CONFIGURABLE},
            "resume": self.resume,
            "fork": self.fork,
        }

    def changed(self, request: dict[str, Any]) -> dict[str, Any]:
        """Validate a ``configure`` request; return the fields whose value it changes.

        Unknown fields are an error, so that a typo never passes for a change that silently did nothing.
        """
        unknown = sorted(set(request) - set(CONFIGURABLE))
        if unknown:
            raise ConfigError(f"cannot configure {', '.join(unknown)}; configurable: {', '.join(CONFIGURABLE)}")
        changes: dict[str, Any] = {}
        for name, raw in request.items():
            value = _check(name, raw)
            if name == "cwd" and not Path(value).is_dir():
                raise ConfigError(f"cwd {value!r} is not a directory")
            if value != getattr(self, name):
                changes[name] = value
        return changes

    def apply(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

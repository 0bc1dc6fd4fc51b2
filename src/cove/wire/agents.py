"""Wire models for agent sessions (see docs/agent-api.md); events themselves are described by
docs/events.schema.json and travel as the JSON objects the runner journalled."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cove.guest.agent_config import MAX_PERMISSION_TIMEOUT_S
from cove.wire.bounds import MAX_TEXT, AbsoluteDir, Name, ShortList, Signal, Text

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk", "auto"]
SessionStatus = Literal["starting", "idle", "running", "exited", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentOptions(_Model):
    model: Name | None = Field(None, description="Model name; the provider's default when null")
    system_prompt: str | None = Field(None, max_length=MAX_TEXT, description="Replaces Claude Code's system prompt")
    allowed_tools: ShortList | None = None
    disallowed_tools: ShortList | None = None
    permission_mode: PermissionMode | None = Field(
        None, description="Default bypassPermissions: the sandbox is the boundary"
    )
    max_turns: int | None = Field(None, ge=1, le=100_000)
    cwd: AbsoluteDir | None = Field(None, description="Working directory inside the sandbox")
    mcp_servers: dict[str, Any] | None = Field(None, max_length=64)
    permission_timeout_s: float | None = Field(
        None,
        gt=0,
        le=MAX_PERMISSION_TIMEOUT_S,
        description="Deny a permission request no client answered within this many seconds; null: wait",
    )


class AgentStart(AgentOptions):
    prompt: str | None = Field(
        None, max_length=MAX_TEXT, description="The first prompt; without one the session waits idle"
    )
    resume: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="claude_session_id of a conversation to continue",
    )
    fork: bool = Field(False, description="With resume: branch the conversation instead of continuing it")


class AgentConfigure(AgentOptions):
    pass


class PromptRequest(_Model):
    text: Text = Field(..., description="The prompt; queued if a turn is running")


class PermissionAnswer(_Model):
    """The answer to a ``permission_requested`` event; who gave it is the server's to say (the key's or token's
    id)."""

    decision: Literal["allow", "deny"]
    message: str | None = Field(None, max_length=10_000, description="With deny: what the agent is told")
    updated_input: dict[str, Any] | None = Field(None, description="With allow: the tool's input, changed")
    remember: bool = Field(False, description="With allow: apply Claude Code's suggested rule, so it asks no more")

    @model_validator(mode="after")
    def _fits_the_decision(self) -> PermissionAnswer:
        if self.decision == "deny" and (self.updated_input is not None or self.remember):
            raise ValueError("updated_input and remember come with allow only")
        return self


class PermissionResolved(BaseModel):
    request_id: str
    decision: Literal["allow", "deny"]
    by: str = Field(description="The id of the API key, or of the token, that answered")


class KillRequest(_Model):
    signal: Signal = "SIGTERM"


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class AgentSession(BaseModel):
    session_id: str
    sandbox_id: str
    status: SessionStatus
    running: bool
    claude_session_id: str | None
    turns: int
    queued: int
    usage: Usage
    metered_usage: Usage = Field(description="Tokens the model proxy counted for this session")
    total_cost_usd: float
    config: dict[str, Any]
    resume: str | None
    fork: bool
    exit_code: int | None
    error: dict[str, Any] | None
    last_seq: int
    created_at: float
    updated_at: float
    tenant_id: str | None = Field(None, description="The tenant that owns it: its sandbox's (a key's id)")


class AgentSessionList(BaseModel):
    sessions: list[AgentSession]


class PromptAccepted(BaseModel):
    queued: int
    turn: int


class InterruptResult(BaseModel):
    interrupted: bool
    turn: int | None = None


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    last_seq: int
    has_more: bool


class ModelInfo(BaseModel):
    upstream: Literal["simulator", "anthropic-compatible"]
    base_url: str
    simulator_url: str | None

"""Wire models for scoped tokens: one sandbox (or one session of it), some scopes, a time to live."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TTL_S = 30 * 24 * 3600
Scope = Literal["read", "prompt", "approve", "exec", "files", "preview"]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sandbox_id: str = Field(min_length=1, max_length=64)
    session_id: str | None = Field(None, min_length=1, max_length=64, description="Only this agent session")
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=6,
        description="read: info, events, attach, files; prompt: prompt, interrupt, configure (and, for a sandbox "
        "token, start sessions); approve: answer permission requests; exec: commands and processes; files: write "
        "files; preview: published ports",
    )
    ttl_s: int = Field(3600, ge=1, le=MAX_TTL_S, description="Seconds until it expires")


class TokenInfo(BaseModel):
    id: str
    sandbox_id: str
    session_id: str | None
    scopes: list[Scope]
    created_at: float
    expires_at: float
    revoked_at: float | None
    key_id: str = Field(description="The key that minted it")
    tenant_id: str


class TokenCreated(TokenInfo):
    token: str = Field(description="The token: shown this once; send it as a Bearer credential or ?token=")


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class Whoami(BaseModel):
    """What the credential a request came with is and may do: the Inspector asks it of a shared link's token, to
    offer only what the token's scopes allow."""

    id: str = Field(description="key_… or tok_…: what events and the audit trail name")
    kind: Literal["key", "token"]
    tenant_id: str
    admin: bool
    scopes: list[Scope] | None = Field(description="A token's scopes; null for a key, which may do everything")
    sandbox_id: str | None = Field(description="A token's sandbox")
    session_id: str | None = Field(description="A session token's session")
    expires_at: float | None = Field(description="When a token stops working")

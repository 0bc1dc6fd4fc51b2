"""Wire models for API keys and what their tenants may use (docs/teams.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from cove.wire.agents import Usage
from cove.wire.bounds import printable
from cove.wire.sandboxes import Limits

KeyName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(printable)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quotas(_Model):
    """What a tenant may use; null: no bound. In a request, what is left out keeps its value (the server's default
    for a new key); in a reply, every quota is there."""

    running_sandboxes: int | None = Field(None, ge=1, le=100_000, description="Sandboxes running at once")
    running_memory_mb: int | None = Field(
        None, ge=16, le=1 << 30, description="The memory limits of its running sandboxes, added up, MiB"
    )
    agent_sessions: int | None = Field(None, ge=1, le=100_000, description="Agent sessions that have not ended")
    checkpoint_mb: int | None = Field(None, ge=1, le=1 << 30, description="What its checkpoints add to the disk, MiB")
    max_limits: Limits = Field(default_factory=Limits, description="The largest limits one sandbox may have")


class KeyCreate(_Model):
    name: KeyName = Field(description="Who or what the key is for")
    quotas: Quotas | None = Field(None, description="Quotas other than the server's defaults for new keys")


class KeyUpdate(_Model):
    quotas: Quotas = Field(description="The quotas to change; those left out keep their value")


class KeyInfo(BaseModel):
    id: str = Field(description="key_…: also the id of its tenant (tenant_id)")
    name: str
    admin: bool
    created_at: float
    revoked_at: float | None
    quotas: Quotas | None = Field(description="null: no quota (the admin key)")


class KeyCreated(KeyInfo):
    key: str = Field(description="The secret: shown this once, never again (only its hash is stored)")


class KeyList(BaseModel):
    keys: list[KeyInfo]


class QuotaUse(BaseModel):
    running_sandboxes: int
    running_memory_mb: int
    agent_sessions: int
    checkpoint_mb: float


class UsageReport(BaseModel):
    tenant_id: str
    quotas: Quotas | None = Field(description="null: no quota (the admin)")
    used: QuotaUse = Field(description="What it uses now, quota by quota")
    agent_usage: Usage = Field(description="Tokens of all its agent sessions, as Claude Code reported them")
    metered_usage: Usage = Field(description="Tokens of all its agent sessions, as Cove's model proxy counted them")
    total_cost_usd: float

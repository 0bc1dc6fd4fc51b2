"""Wire models for the audit trail."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    id: int
    time: float
    by: str | None = Field(description="The key or token that made the call; null: no valid credential")
    tenant_id: str | None
    action: str = Field(description="What was done: <routes module>.<operation>, e.g. sandboxes.kill_sandbox")
    target: str | None = Field(description="What it was done to: the ids of the path, and of what was created")
    status: int = Field(description="The HTTP status of the answer (for a WebSocket command: of the same via REST)")
    client: str | None = Field(description="The client's address")


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first")
    has_more: bool = Field(description="Older entries follow: ask again with before=<the last id>")

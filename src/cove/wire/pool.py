"""Wire models for the warm pool: sandboxes started ahead of time so that a create is a claim (operators only)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PoolInfo(BaseModel):
    size: int = Field(description="Pooled sandboxes the server keeps ready (COVE_POOL_SIZE); 0 once drained")
    ready: list[str] = Field(description="Ids of the pooled sandboxes ready to be claimed")
    filling: bool = Field(description="Whether a pooled sandbox is being started right now")
    failures: int = Field(description="Pool starts that failed since the server started")

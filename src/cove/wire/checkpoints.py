"""Wire models for checkpoints: snapshots of a sandbox's files that forks and restores start from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CheckpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, description="A label for people; need not be unique")


class Checkpoint(BaseModel):
    id: str
    sandbox_id: str = Field(description="The sandbox it was taken of (which may have stopped since)")
    name: str | None
    created_at: float
    size_bytes: int = Field(description="Disk the checkpoint added: what changed since the previous one")
    tenant_id: str | None = Field(None, description="The tenant that owns it: its sandbox's")


class CheckpointList(BaseModel):
    checkpoints: list[Checkpoint]


class RestoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checkpoint_id: str = Field(..., min_length=1)

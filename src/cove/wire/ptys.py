"""Wire models for terminals (``/v1/sandboxes/{id}/pty``): programs on a pseudo-terminal in a sandbox."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cove.wire.bounds import Command, EnvMap, SandboxDir

MAX_TERMINAL_SIZE = 1000  # columns and rows, as the supervisor takes them


class PtyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: Command = Field("bash -l", description="A shell command line, or an argv list run directly")
    cols: int = Field(80, ge=1, le=MAX_TERMINAL_SIZE, description="Columns")
    rows: int = Field(24, ge=1, le=MAX_TERMINAL_SIZE, description="Rows")
    env: EnvMap = Field(
        default_factory=dict, description="Added to the sandbox's environment (TERM defaults to xterm-256color)"
    )
    cwd: SandboxDir | None = Field(None, description="Working directory; the sandbox's by default")


class PtyResize(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cols: int = Field(..., ge=1, le=MAX_TERMINAL_SIZE)
    rows: int = Field(..., ge=1, le=MAX_TERMINAL_SIZE)


class PtyInfo(BaseModel):
    pty_id: str = Field(description="Cove's id of the terminal (pty1, pty2…)")
    pid: int = Field(description="The Linux process id of its program inside the sandbox")
    command: list[str]
    cols: int
    rows: int
    running: bool
    exit_code: int | None
    signal: int | None
    started_at: float
    ended_at: float | None
    output_bytes: int = Field(description="Bytes of output so far: the offset a client that saw all of it resumes from")


class PtyList(BaseModel):
    ptys: list[PtyInfo]

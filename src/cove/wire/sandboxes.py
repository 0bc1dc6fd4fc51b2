"""Wire models for sandboxes, exec and files.

Field constraints here are the API's validation: FastAPI turns a violation into a 422 naming the field, and the
SDK parses replies into the same models, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cove.wire.bounds import (
    Command,
    EnvMap,
    Labels,
    Name,
    SandboxDir,
    SandboxPath,
    Seconds,
    Signal,
)

MAX_TEXT_STDIN = 16 * 1024 * 1024
NetworkMode = Literal["none", "egress", "host"]
NetworkRule = Annotated[str, Field(min_length=1, max_length=255, description="An IPv4 CIDR or a host name")]
SandboxState = Literal["starting", "running", "stopped", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkPolicy(_Model):
    """What a sandbox may reach. ``egress``: its own network namespace, NATed outbound, never the host, link-local,
    private ranges or other sandboxes unless ``allow`` names them; ``deny`` removes destinations; ``allow``, when
    given, narrows egress to exactly what it names (docs/networking.md). ``none``: loopback only. ``host``: the
    host's network, when the server allows it."""

    mode: NetworkMode = "egress"
    allow: list[NetworkRule] = Field(default_factory=list, max_length=256)
    deny: list[NetworkRule] = Field(default_factory=list, max_length=256)


class Limits(_Model):
    """Omitted limits take the server's defaults (``cove serve --default-memory-mb`` and the others): every
    sandbox has a memory, process, disk and ``/dev/shm`` limit."""

    memory_mb: int | None = Field(None, ge=16, le=1024 * 1024, description="Memory limit in MiB")
    cpus: float | None = Field(None, ge=0.01, le=1024, description="CPU quota in cores (at least 0.01)")
    pids: int | None = Field(None, ge=8, le=1_000_000, description="Maximum number of processes and threads")
    disk_mb: int | None = Field(
        None, ge=1, le=16 * 1024 * 1024, description="Disk quota for the sandbox's writable files, in MiB"
    )
    shm_mb: int | None = Field(None, ge=1, le=1024 * 1024, description="Size of /dev/shm (a tmpfs), in MiB")


class SandboxCreate(_Model):
    env: EnvMap = Field(default_factory=dict, description="Environment for every command")
    cwd: SandboxDir = Field("/workspace", description="Default working directory inside the sandbox")
    timeout: Seconds | None = Field(None, description="Seconds until the sandbox is killed; none = no limit")
    idle_timeout: Seconds | None = Field(None, description="Seconds without API activity before it is killed")
    labels: Labels = Field(default_factory=dict, description="Metadata labels to filter lists by")
    limits: Limits = Field(default_factory=Limits)
    network: NetworkMode | NetworkPolicy | None = Field(
        None, description="A mode, or a policy with rules; the server's default (egress, unless set) when left out"
    )
    from_checkpoint: str | None = Field(
        None, max_length=64, description="Start with the files of this checkpoint (a fork)"
    )


class SandboxInfo(BaseModel):
    id: str
    state: SandboxState
    stop_reason: str | None
    created_at: float
    expires_at: float | None
    idle_timeout: float | None
    last_active_at: float
    labels: dict[str, str]
    env: dict[str, str]
    cwd: str
    network: NetworkPolicy = Field(description="The network in force: its mode and rules")
    limits: Limits
    enforced_limits: dict[str, str] = Field(description="Each limit really enforced, and by what mechanism")
    driver: str
    storage_driver: str = Field(description="What holds its files and checkpoints: overlayfs (or btrfs)")
    oom_kills: int = Field(description="Processes the kernel killed for exceeding the memory limit")
    disk_used_bytes: int | None = Field(
        None,
        description="The sandbox's own files as the disk-quota watchdog last measured them (with a quota; each file "
        "counts as at least 16 KiB)",
    )
    tenant_id: str | None = Field(None, description="The tenant that owns it: the id of the key that created it")


class SandboxList(BaseModel):
    sandboxes: list[SandboxInfo]


class TimeoutUpdate(_Model):
    timeout: Seconds | None = Field(..., description="New timeout in seconds from now; null removes it")


class ExecCommand(_Model):
    command: Command = Field(..., description="A shell command line, or an argv list run directly")
    env: EnvMap = Field(default_factory=dict)
    cwd: SandboxDir | None = None
    timeout: Seconds | None = Field(None, description="Seconds before the command is killed")
    stdin: str | None = Field(None, max_length=MAX_TEXT_STDIN, description="Text fed to the command's standard input")
    background: bool = Field(False, description="Return at once; attach to the process for its output")
    tag: Name | None = None


class ExecResult(BaseModel):
    process_id: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool
    signal: int | None
    oom_killed: bool
    truncated: bool


class ProcessInfo(BaseModel):
    process_id: str = Field(description="Cove's id of the process (p1, p2…): what attach, get and kill take")
    id: str = Field(description="The same id under its first name, kept for the clients that read it")
    pid: int = Field(description="The Linux process id inside the sandbox")
    command: list[str]
    cwd: str
    tag: str | None
    running: bool
    exit_code: int | None
    signal: int | None
    timed_out: bool
    started_at: float
    ended_at: float | None
    stdout_bytes: int
    stderr_bytes: int

    @model_validator(mode="before")
    @classmethod
    def _one_id_two_names(cls, data: Any) -> Any:
        """The guest and older servers name the id ``id`` only (docs/names.md: it is ``process_id``)."""
        if isinstance(data, dict) and ("id" in data) != ("process_id" in data):
            same = data.get("process_id", data.get("id"))
            data = {**data, "process_id": same, "id": same}
        return data


class ProcessList(BaseModel):
    processes: list[ProcessInfo]


class SignalRequest(_Model):
    signal: Signal = "SIGTERM"


class FileInfo(BaseModel):
    name: str
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: int
    modified_at: float
    symlink_target: str | None = None


class FileList(BaseModel):
    entries: list[FileInfo]
    has_more: bool = Field(False, description="More entries follow the last one: ask again with after=<its name>")


class Exists(BaseModel):
    exists: bool


class MkdirRequest(_Model):
    path: SandboxPath
    parents: bool = True


class RenameRequest(_Model):
    source: SandboxPath
    destination: SandboxPath


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail

"""Cove's Python SDK: ``AsyncSandbox`` (async-first) and its sync twin ``Sandbox``, over one shared core."""

from cove.sdk._agent import AgentEvent, AgentSessionEnded, AsyncAgents, AsyncAgentSession
from cove.sdk._client import AsyncClient
from cove.sdk._errors import (
    AuthError,
    CheckpointNotFound,
    CommandTimeout,
    Conflict,
    ConnectionLost,
    CoveError,
    FileNotFound,
    InvalidRequest,
    NotFound,
    PathOutsideSandbox,
    ProcessNotFound,
    SandboxNotFound,
    SandboxNotRunning,
)
from cove.sdk._sandbox import AsyncExec, AsyncFiles, AsyncSandbox, OutputChunk, ProcessHandle, ProcessResult
from cove.sdk._sync import Exec, Files, Process, Sandbox
from cove.sdk._sync_agent import Agents, AgentSession
from cove.wire import Checkpoint, ExecResult, FileInfo, Limits, ProcessInfo, SandboxInfo

__all__ = [
    "AgentEvent",
    "AgentSession",
    "AgentSessionEnded",
    "Agents",
    "AsyncAgentSession",
    "AsyncAgents",
    "AsyncClient",
    "AsyncExec",
    "AsyncFiles",
    "AsyncSandbox",
    "AuthError",
    "Checkpoint",
    "CheckpointNotFound",
    "CommandTimeout",
    "Conflict",
    "ConnectionLost",
    "CoveError",
    "Exec",
    "ExecResult",
    "FileInfo",
    "FileNotFound",
    "Files",
    "InvalidRequest",
    "Limits",
    "NotFound",
    "OutputChunk",
    "PathOutsideSandbox",
    "Process",
    "ProcessHandle",
    "ProcessInfo",
    "ProcessNotFound",
    "ProcessResult",
    "Sandbox",
    "SandboxInfo",
    "SandboxNotFound",
    "SandboxNotRunning",
]

"""The sync twin: ``Sandbox`` runs the async core on one background event loop, so both share every line of
protocol code and differ only in how a caller waits."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from cove.sdk._client import AsyncClient
from cove.sdk._portal import call, iterate
from cove.sdk._sandbox import (
    AsyncSandbox,
    OutputCallback,
    OutputChunk,
    ProcessHandle,
    ProcessResult,
    ProgressCallback,
)
from cove.sdk._sync_agent import Agents
from cove.sdk._sync_pty import Ptys
from cove.wire import (
    Checkpoint,
    ExecResult,
    FileInfo,
    Limits,
    NetworkMode,
    NetworkPolicy,
    PortInfo,
    ProcessInfo,
    SandboxInfo,
    Scope,
    TokenCreated,
)

T = TypeVar("T")


class Process:
    """Sync view of a streaming process: iterate for output chunks, ``wait()`` for the result."""

    def __init__(self, handle: ProcessHandle) -> None:
        self._handle = handle

    @property
    def process_id(self) -> str:
        return self._handle.process_id

    @property
    def offsets(self) -> tuple[int, int]:
        return self._handle.offsets

    @property
    def info(self) -> ProcessInfo:
        """The process as last reported (its final state once it has exited)."""
        return self._handle.info

    def __iter__(self) -> Iterator[OutputChunk]:
        return iterate(self._handle.__aiter__())

    def wait(self) -> ProcessResult:
        return call(self._handle.wait())

    def send_stdin(self, data: str | bytes) -> None:
        call(self._handle.send_stdin(data))

    def close_stdin(self) -> None:
        call(self._handle.close_stdin())

    def signal(self, signal: str | int = "SIGTERM") -> None:
        call(self._handle.signal(signal))

    def kill(self) -> None:
        call(self._handle.kill())

    def close(self) -> None:
        call(self._handle.close())


class Exec:
    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._exec = sandbox.exec

    def run(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        stdin: str | None = None,
        check_timeout: bool = True,
    ) -> ExecResult:
        """Run to completion. ``sandbox.exec.run("echo hi").stdout == "hi\\n"``."""
        return call(
            self._exec.run(command, env=env, cwd=cwd, timeout=timeout, stdin=stdin, check_timeout=check_timeout)
        )

    def start(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        tag: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> Process:
        """Start a streaming process; callbacks run on the SDK's background thread."""
        return Process(
            call(
                self._exec.start(
                    command,
                    env=env,
                    cwd=cwd,
                    timeout=timeout,
                    tag=tag,
                    on_stdout=on_stdout,
                    on_stderr=on_stderr,
                )
            )
        )

    def background(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
        tag: str | None = None,
    ) -> ProcessInfo:
        return call(self._exec.background(command, env=env, cwd=cwd, timeout=timeout, tag=tag))

    def attach(
        self,
        process_id: str,
        *,
        stdout_offset: int = 0,
        stderr_offset: int = 0,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> Process:
        return Process(
            call(
                self._exec.attach(
                    process_id,
                    stdout_offset=stdout_offset,
                    stderr_offset=stderr_offset,
                    on_stdout=on_stdout,
                    on_stderr=on_stderr,
                )
            )
        )

    def list(self) -> list[ProcessInfo]:
        return call(self._exec.list())

    def get(self, process_id: str) -> ProcessInfo:
        return call(self._exec.get(process_id))

    def kill(self, process_id: str, signal: str | int = "SIGKILL") -> ProcessInfo:
        return call(self._exec.kill(process_id, signal))


class Files:
    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._files = sandbox.files

    def read(self, path: str) -> bytes:
        return call(self._files.read(path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return call(self._files.read_text(path, encoding))

    def stream(self, path: str) -> Iterator[bytes]:
        """Download in chunks — for files too large to hold in memory."""
        return iterate(self._files.stream(path))

    def download(self, path: str, destination: str | Path, *, on_progress: ProgressCallback | None = None) -> int:
        """Download to a local file, which appears only once complete; returns its size."""
        return call(self._files.download(path, destination, on_progress=on_progress))

    def write(
        self,
        path: str,
        data: bytes | str | Path | Iterable[bytes],
        *,
        mode: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> FileInfo:
        """Write a file, creating its parent directories; a local Path or an iterator of chunks is streamed."""
        return call(self._files.write(path, data, mode=mode, on_progress=on_progress))

    def list(self, path: str = "/workspace") -> list[FileInfo]:
        return call(self._files.list(path))

    def stat(self, path: str) -> FileInfo:
        return call(self._files.stat(path))

    def exists(self, path: str) -> bool:
        return call(self._files.exists(path))

    def mkdir(self, path: str, *, parents: bool = True) -> FileInfo:
        return call(self._files.mkdir(path, parents=parents))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        call(self._files.remove(path, recursive=recursive))

    def rename(self, source: str, destination: str) -> FileInfo:
        return call(self._files.rename(source, destination))


class Network:
    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._network = sandbox.network

    def update(self, *, allow: list[str] | None = None, deny: list[str] | None = None) -> NetworkPolicy:
        """Replace an egress sandbox's allow and deny rules, in force at once; returns the policy in force."""
        return call(self._network.update(allow=allow, deny=deny))


class Ports:
    """Preview URLs for the sandbox's ports (see ``AsyncPorts``).

    >>> preview = sandbox.ports.expose(8000)
    >>> httpx.get(preview.url, headers={"X-Cove-Preview-Token": preview.token})
    """

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._ports = sandbox.ports

    def expose(self, port: int, *, public: bool = False, ttl_s: int | None = None) -> PortInfo:
        """Publish ``port`` at ``url``; private (a token with the ``preview`` scope needed) unless ``public``."""
        return call(self._ports.expose(port, public=public, ttl_s=ttl_s))

    def list(self) -> list[PortInfo]:
        return call(self._ports.list())

    def close(self, port: int) -> PortInfo:
        """Unpublish ``port``: its preview answers 404 from now on, and its token is revoked."""
        return call(self._ports.close(port))


class Sandbox:
    """A sandbox on a Cove server (blocking API).

    >>> with Sandbox.create() as sandbox:
    ...     print(sandbox.exec.run("echo hello").stdout)
    hello
    """

    def __init__(self, core: AsyncSandbox) -> None:
        self._core = core
        self.exec = Exec(core)
        self.files = Files(core)
        self.agent = Agents(core.agent)
        self.network = Network(core)
        self.pty = Ptys(core.pty)
        self.ports = Ports(core)

    @property
    def id(self) -> str:
        return self._core.id

    @property
    def info(self) -> SandboxInfo:
        return self._core.info

    @classmethod
    def create(
        cls,
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/workspace",
        timeout: float | None = None,
        idle_timeout: float | None = None,
        labels: dict[str, str] | None = None,
        limits: Limits | dict[str, Any] | None = None,
        network: NetworkMode | NetworkPolicy | dict[str, Any] | None = None,
        from_checkpoint: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
    ) -> Sandbox:
        return cls(
            call(
                AsyncSandbox.create(
                    env=env,
                    cwd=cwd,
                    timeout=timeout,
                    idle_timeout=idle_timeout,
                    labels=labels,
                    limits=limits,
                    network=network,
                    from_checkpoint=from_checkpoint,
                    url=url,
                    api_key=api_key,
                )
            )
        )

    @classmethod
    def connect(cls, sandbox_id: str, *, url: str | None = None, api_key: str | None = None) -> Sandbox:
        return cls(call(AsyncSandbox.connect(sandbox_id, url=url, api_key=api_key)))

    @classmethod
    def list(
        cls,
        *,
        state: str | None = None,
        labels: dict[str, str] | None = None,
        tenant_id: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
    ) -> list[SandboxInfo]:
        """The sandboxes this key sees (its tenant's; the admin's: every tenant's, or ``tenant_id``'s)."""
        return call(AsyncSandbox.list(state=state, labels=labels, tenant_id=tenant_id, url=url, api_key=api_key))

    def refresh(self) -> SandboxInfo:
        return call(self._core.refresh())

    def is_running(self) -> bool:
        """Whether the sandbox is running now (asks the server)."""
        return call(self._core.is_running())

    def set_timeout(self, timeout: float | None) -> SandboxInfo:
        return call(self._core.set_timeout(timeout))

    def kill(self) -> SandboxInfo:
        return call(self._core.kill())

    def create_token(
        self, scopes: Iterable[Scope], *, ttl_s: int = 3600, session_id: str | None = None
    ) -> TokenCreated:
        """A token for this sandbox alone (or one agent session in it), with ``scopes``, for ``ttl_s`` seconds.

        >>> viewer = sandbox.create_token(["read"], ttl_s=600)
        >>> Sandbox.connect(sandbox.id, api_key=viewer.token).info.state
        'running'
        """
        return call(self._core.create_token(scopes, ttl_s=ttl_s, session_id=session_id))

    def checkpoint(self, name: str | None = None) -> Checkpoint:
        """Snapshot the sandbox's files; ``Sandbox.create(from_checkpoint=c.id)`` forks it."""
        return call(self._core.checkpoint(name))

    def checkpoints(self) -> builtins.list[Checkpoint]:  # plain ``list`` here means the classmethod
        return call(self._core.checkpoints())

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return call(self._core.get_checkpoint(checkpoint_id))

    def delete_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return call(self._core.delete_checkpoint(checkpoint_id))

    def restore(self, checkpoint_id: str) -> SandboxInfo:
        """Put the files back to a checkpoint in place; processes are killed, not restored."""
        return call(self._core.restore(checkpoint_id))

    def close(self) -> None:
        call(self._core.close())

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        call(self._core.__aexit__(exc_type, exc, tb))


__all__ = ["AsyncClient", "Exec", "Files", "Ports", "Process", "Sandbox"]

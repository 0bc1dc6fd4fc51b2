"""``cove sandbox create|ls|info|exec|shell|ps|attach|kill-process|expose|ports|unexpose|kill``."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from cove.cli import _terminal
from cove.cli._output import Column, JsonOpt, command, details, emit, emit_json, note, table
from cove.cli._process import feed_stdin, follow
from cove.sdk import Limits, NetworkPolicy, PortInfo, ProcessInfo, ProcessNotFound, Sandbox, SandboxInfo

app = typer.Typer(
    help="Create, list, inspect and kill sandboxes; run and follow commands in them.", no_args_is_help=True
)
SandboxArg = Annotated[str, typer.Argument(metavar="SANDBOX", help="A sandbox id (sbx_…)")]
ProcessArg = Annotated[
    str, typer.Argument(metavar="PROCESS", help="A process id from `cove sandbox ps` (p1, p2…), or its Linux PID")
]
PortArg = Annotated[int, typer.Argument(metavar="PORT", min=1, max=65535, help="A TCP port inside the sandbox")]


def _key_values(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{what} {item!r} must look like KEY=VALUE")
        pairs[key] = value
    return pairs


def ago(then: float) -> str:
    seconds = max(0, int(time.time() - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def limits_text(limits: Limits) -> str:
    """The limits' values as a person reads them (which of them the host enforces is in ``cove sandbox info``)."""
    parts = [
        f"mem {limits.memory_mb}M" if limits.memory_mb is not None else "",
        f"{limits.cpus:g} cpu" if limits.cpus is not None else "",
        f"{limits.pids} pids" if limits.pids is not None else "",
        f"disk {limits.disk_mb}M" if limits.disk_mb is not None else "",
        f"shm {limits.shm_mb}M" if limits.shm_mb is not None else "",
    ]
    return ", ".join(part for part in parts if part) or "none"


def _network(mode: str | None, allow: list[str], deny: list[str]) -> dict[str, Any] | None:
    """The create's network: rules make it an egress policy; nothing given, the server's default."""
    if allow or deny:
        return {"mode": mode or "egress", "allow": allow, "deny": deny}
    return {"mode": mode} if mode else None


def network_text(policy: NetworkPolicy) -> str:
    rules = [*(f"allow {rule}" for rule in policy.allow), *(f"deny {rule}" for rule in policy.deny)]
    return policy.mode + (f" ({', '.join(rules)})" if rules else "")


def _state(info: SandboxInfo) -> str:
    return info.state + (f" ({info.stop_reason})" if info.stop_reason else "")


@command(app)
def create(
    env: Annotated[list[str], typer.Option("--env", "-e", help="KEY=VALUE, repeatable")] = [],  # noqa: B006
    label: Annotated[list[str], typer.Option("--label", "-l", help="KEY=VALUE, repeatable")] = [],  # noqa: B006
    cwd: Annotated[str, typer.Option(help="Working directory of commands (under /workspace, /home/user, /tmp)")] = (
        "/workspace"
    ),
    timeout: Annotated[float | None, typer.Option(help="Seconds until the sandbox is killed")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Seconds without API activity before it is killed")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Memory limit in MiB")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU quota in cores")] = None,
    pids: Annotated[int | None, typer.Option(help="Limit on processes and threads")] = None,
    disk_mb: Annotated[int | None, typer.Option(help="Disk quota in MiB")] = None,
    shm_mb: Annotated[int | None, typer.Option(help="Size of /dev/shm in MiB")] = None,
    network: Annotated[
        str | None, typer.Option(help="egress (outbound internet; the server's usual default), none, or host")
    ] = None,
    allow: Annotated[
        list[str], typer.Option("--allow", help="Egress only to this CIDR or host name (*.example.com), repeatable")
    ] = [],  # noqa: B006
    deny: Annotated[list[str], typer.Option("--deny", help="Never this CIDR or host name, repeatable")] = [],  # noqa: B006
    from_checkpoint: Annotated[str | None, typer.Option(help="Fork: start with this checkpoint's files")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a sandbox and print its id."""
    limits = {"memory_mb": memory_mb, "cpus": cpus, "pids": pids, "disk_mb": disk_mb, "shm_mb": shm_mb}
    sandbox = Sandbox.create(
        env=_key_values(env, "--env"),
        labels=_key_values(label, "--label"),
        cwd=cwd,
        timeout=timeout,
        idle_timeout=idle_timeout,
        limits={k: v for k, v in limits.items() if v is not None},
        network=_network(network, allow, deny),
        from_checkpoint=from_checkpoint,
    )
    emit(sandbox.info, as_json, sandbox.id)


@command(app, "ls")
def list_sandboxes(
    state: Annotated[str | None, typer.Option(help="Only this state: starting, running, stopped or failed")] = None,
    label: Annotated[list[str], typer.Option("--label", "-l", help="KEY=VALUE filter, repeatable")] = [],  # noqa: B006
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Stopped sandboxes too")] = False,
    tenant: Annotated[str | None, typer.Option(help="The admin's filter: only this tenant's (a key's id)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List sandboxes; stopped ones only with --all (or --state stopped)."""
    sandboxes = Sandbox.list(state=state, labels=_key_values(label, "--label"), tenant_id=tenant)
    hidden = 0
    if not (show_all or state):
        shown = [s for s in sandboxes if s.state != "stopped"]
        hidden, sandboxes = len(sandboxes) - len(shown), shown
    if as_json:
        emit_json(sandboxes)
        return
    table(
        [Column("SANDBOX", id=True), Column("STATE"), Column("CREATED"), Column("LIMITS"), Column("LABELS")],
        [
            [
                s.id,
                _state(s),
                ago(s.created_at),
                limits_text(s.limits),
                ",".join(f"{k}={v}" for k, v in s.labels.items()),
            ]
            for s in sandboxes
        ],
    )
    if hidden:
        note(f"({hidden} stopped sandbox{'es' if hidden > 1 else ''} not shown: --all shows them)")


@command(app)
def info(sandbox_id: SandboxArg, as_json: JsonOpt = False) -> None:
    """Everything about one sandbox: state, limits and which of them the host enforces, labels, timeouts."""
    sandbox = Sandbox.connect(sandbox_id).info
    if as_json:
        emit_json(sandbox)
        return
    enforced = ", ".join(f"{name} by {how}" for name, how in sandbox.enforced_limits.items())
    details(
        [
            ("sandbox", sandbox.id),
            ("state", _state(sandbox)),
            ("created", ago(sandbox.created_at)),
            ("expires", f"in {int(sandbox.expires_at - time.time())}s" if sandbox.expires_at else "never"),
            ("idle timeout", f"{sandbox.idle_timeout:g}s" if sandbox.idle_timeout else "none"),
            ("limits", limits_text(sandbox.limits)),
            ("enforced", enforced or "nothing"),
            ("oom kills", sandbox.oom_kills),
            ("disk used", f"{sandbox.disk_used_bytes:,} bytes" if sandbox.disk_used_bytes is not None else "-"),
            ("network", network_text(sandbox.network)),
            ("cwd", sandbox.cwd),
            ("labels", ", ".join(f"{k}={v}" for k, v in sandbox.labels.items()) or "none"),
            ("env", ", ".join(sandbox.env) or "none"),
            ("storage", sandbox.storage_driver),
        ]
    )


@command(app, "exec")
def run(
    sandbox_id: SandboxArg,
    command: Annotated[
        list[str],
        typer.Argument(help="One word runs as a bash line ('make && ./test'); several run as argv, after --"),
    ],
    timeout: Annotated[float | None, typer.Option(help="Seconds before the command is killed")] = None,
    stdin: Annotated[bool, typer.Option("--stdin", "-i", help="Pass this command's stdin (a file or pipe) on")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a command, stream its output, and exit with its exit code.

    Put -- before a command that has options of its own: cove sandbox exec SANDBOX -- ls -la /workspace.
    Ctrl-C is sent to the command; a second Ctrl-C detaches and leaves it running. Processes it starts in the
    background (`server &`) end with it: run those with `cove sandbox exec` of their own, or exec.background.
    """
    argv: str | list[str] = command[0] if len(command) == 1 else command
    sandbox = Sandbox.connect(sandbox_id)
    if as_json:
        text = sys.stdin.read() if stdin else None
        emit_json(sandbox.exec.run(argv, timeout=timeout, stdin=text, check_timeout=False))
        return
    process = sandbox.exec.start(argv, timeout=timeout)
    feed_stdin(process, stdin)
    code = follow(process, sandbox_id)
    raise typer.Exit(code)


@command(app)
def shell(
    sandbox_id: SandboxArg,
    command: Annotated[str, typer.Option("--command", "-c", help="What runs on the terminal (a bash line)")] = (
        "bash -l"
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Only make the terminal and print it as JSON (to attach to elsewhere)")
    ] = False,
) -> None:
    """An interactive terminal in the sandbox, until its shell exits (exit returns with the shell's status).

    Keys go to the sandbox as typed: Ctrl-C interrupts what runs there, not this command. The terminal takes the
    size of this window and follows it. If the connection drops the shell keeps running in the sandbox.
    """
    sandbox = Sandbox.connect(sandbox_id)
    cols, rows = _terminal.window_size()
    terminal = sandbox.pty.create(command=command, cols=cols, rows=rows)
    if as_json:
        terminal.close()
        emit_json(terminal.info)
        return
    raise typer.Exit(_terminal.exit_status(_terminal.run(terminal)))


def _process_state(process: ProcessInfo) -> str:
    if process.running:
        return "running"
    if process.timed_out:
        return "timed out"
    return f"exit {process.exit_code}" if process.exit_code is not None else f"signal {process.signal}"


@command(app)
def ps(
    sandbox_id: SandboxArg,
    show_all: Annotated[bool, typer.Option("--all", "-a", help="Processes that have ended too")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the processes Cove started in the sandbox (running ones, or all with --all)."""
    processes = Sandbox.connect(sandbox_id).exec.list()
    if not show_all:
        processes = [p for p in processes if p.running]
    if as_json:
        emit_json(processes)
        return
    table(
        [
            Column("PROCESS", id=True),
            Column("PID"),
            Column("STATE"),
            Column("STARTED"),
            Column("TAG"),
            Column("COMMAND"),
        ],
        [[p.process_id, p.pid, _process_state(p), ago(p.started_at), p.tag, " ".join(p.command)] for p in processes],
    )


def _find(sandbox: Sandbox, process: str) -> str:
    """A process id, given one or the Linux PID of a process Cove started."""
    if not process.isdigit():
        return process
    for candidate in sandbox.exec.list():
        if candidate.pid == int(process):
            return candidate.process_id
    raise ProcessNotFound(f"no process with PID {process} in sandbox {sandbox.id} (see `cove sandbox ps`)")


@command(app)
def attach(sandbox_id: SandboxArg, process: ProcessArg, as_json: JsonOpt = False) -> None:
    """Follow a process: all its output so far, then live, until it exits (Ctrl-C as for exec)."""
    sandbox = Sandbox.connect(sandbox_id)
    handle = sandbox.exec.attach(_find(sandbox, process))
    if as_json:
        result = handle.wait()
        emit_json({**result.process.model_dump(mode="json"), "stdout": result.stdout, "stderr": result.stderr})
        return
    code = follow(handle, sandbox_id)
    raise typer.Exit(code)


@command(app, "kill-process")
def kill_process(
    sandbox_id: SandboxArg,
    process: ProcessArg,
    signal: Annotated[str, typer.Option(help="Signal name or number, e.g. SIGINT, SIGKILL, 9")] = "SIGTERM",
    as_json: JsonOpt = False,
) -> None:
    """Send a signal (default SIGTERM) to a process and the processes it started."""
    sandbox = Sandbox.connect(sandbox_id)
    killed = sandbox.exec.kill(_find(sandbox, process), int(signal) if signal.isdigit() else signal)
    emit(killed, as_json, f"sent {signal} to {killed.process_id}")


def browser_url(preview: PortInfo) -> str:
    """The URL to open in a browser: a private preview's carries its token once (a cookie then keeps it open)."""
    return preview.url if preview.public else f"{preview.url}?token={preview.token}"


@command(app)
def expose(
    sandbox_id: SandboxArg,
    port: PortArg,
    public: Annotated[bool, typer.Option("--public", help="Anyone with the URL may open it; else its token")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish a port of the sandbox at a preview URL, and print the URL to open in a browser.

    A private preview's URL carries its token (?token=), once: the browser then keeps a cookie for that preview.
    Scripts send the token in the X-Cove-Preview-Token header (--json shows it). Exposing an exposed port again
    only changes --public, and prints its URL again. Whatever listens on the port, on 127.0.0.1 or 0.0.0.0,
    answers there: with any network mode, none included.
    """
    preview = Sandbox.connect(sandbox_id).ports.expose(port, public=public)
    emit(preview, as_json, browser_url(preview))


@command(app)
def ports(sandbox_id: SandboxArg, as_json: JsonOpt = False) -> None:
    """List the sandbox's published ports and their preview URLs (--json: with their tokens)."""
    published = Sandbox.connect(sandbox_id).ports.list()
    if as_json:
        emit_json(published)
        return
    table(
        [Column("PORT"), Column("ACCESS"), Column("URL", id=True)],
        [[p.port, "public" if p.public else "private", p.url] for p in published],
    )


@command(app)
def unexpose(sandbox_id: SandboxArg, port: PortArg, as_json: JsonOpt = False) -> None:
    """Unpublish a port: its preview URL answers 404 from now on, and its token is revoked."""
    closed = Sandbox.connect(sandbox_id).ports.close(port)
    emit(closed, as_json, f"closed port {closed.port} of {sandbox_id}")


@command(app)
def kill(sandbox_id: SandboxArg, as_json: JsonOpt = False) -> None:
    """Kill a sandbox and free its resources (its checkpoints stay)."""
    killed = Sandbox.connect(sandbox_id).kill()
    emit(killed, as_json, f"{killed.id} {killed.state}")


@command(app)
def network(
    sandbox_id: SandboxArg,
    allow: Annotated[
        list[str], typer.Option("--allow", help="Egress only to this CIDR or host name (*.example.com), repeatable")
    ] = [],  # noqa: B006
    deny: Annotated[list[str], typer.Option("--deny", help="Never this CIDR or host name, repeatable")] = [],  # noqa: B006
    as_json: JsonOpt = False,
) -> None:
    """Replace a running egress sandbox's allow and deny rules (no rule: the whole internet again)."""
    policy = Sandbox.connect(sandbox_id).network.update(allow=allow, deny=deny)
    emit(policy, as_json, network_text(policy))

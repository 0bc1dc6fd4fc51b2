"""``cove sandbox create|ls|exec|kill``."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from cove.cli._output import emit_json, fail, table
from cove.sdk import CoveError, Sandbox, SandboxInfo

app = typer.Typer(help="Create, list, run commands in and kill sandboxes.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _key_values(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{what} {item!r} must look like KEY=VALUE")
        pairs[key] = value
    return pairs


def _rows(sandboxes: list[SandboxInfo]) -> list[list[object]]:
    now = time.time()
    return [
        [
            s.id,
            s.state + (f" ({s.stop_reason})" if s.stop_reason else ""),
            f"{int(now - s.created_at)}s ago",
            ",".join(f"{k}={v}" for k, v in s.labels.items()),
            ",".join(f"{k}:{v}" for k, v in s.enforced_limits.items()),
        ]
        for s in sandboxes
    ]


@app.command()
def create(
    env: Annotated[list[str], typer.Option("--env", "-e", help="KEY=VALUE, repeatable")] = [],  # noqa: B006
    label: Annotated[list[str], typer.Option("--label", "-l", help="KEY=VALUE, repeatable")] = [],  # noqa: B006
    timeout: Annotated[float | None, typer.Option(help="Seconds until the sandbox is killed")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Idle seconds before it is killed")] = None,
    memory_mb: Annotated[int | None, typer.Option(help="Memory limit in MiB")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU quota in cores")] = None,
    pids: Annotated[int | None, typer.Option(help="Process limit")] = None,
    disk_mb: Annotated[int | None, typer.Option(help="Disk quota in MiB")] = None,
    network: Annotated[str, typer.Option(help="none or host")] = "none",
    from_checkpoint: Annotated[str | None, typer.Option(help="Fork: start with this checkpoint's files")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a sandbox and print its id."""
    limits = {"memory_mb": memory_mb, "cpus": cpus, "pids": pids, "disk_mb": disk_mb}
    try:
        sandbox = Sandbox.create(
            env=_key_values(env, "--env"),
            labels=_key_values(label, "--label"),
            timeout=timeout,
            idle_timeout=idle_timeout,
            limits={k: v for k, v in limits.items() if v is not None},
            network=network,  # type: ignore[arg-type]
            from_checkpoint=from_checkpoint,
        )
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(sandbox.info)
    else:
        print(sandbox.id)


@app.command("ls")
def list_sandboxes(
    state: Annotated[str | None, typer.Option(help="running, stopped or failed")] = None,
    label: Annotated[list[str], typer.Option("--label", "-l", help="KEY=VALUE filter")] = [],  # noqa: B006
    as_json: JsonOpt = False,
) -> None:
    """List sandboxes."""
    try:
        sandboxes = Sandbox.list(state=state, labels=_key_values(label, "--label"))
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(sandboxes)
    else:
        table(["ID", "STATE", "CREATED", "LABELS", "LIMITS"], _rows(sandboxes))


@app.command("exec")
def run(
    sandbox_id: str,
    command: Annotated[list[str], typer.Argument(help="Command; several words run as argv, one as a shell line")],
    timeout: Annotated[float | None, typer.Option(help="Seconds before the command is killed")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a command, stream its output, and exit with its exit code."""
    argv: str | list[str] = command[0] if len(command) == 1 else command
    try:
        sandbox = Sandbox.connect(sandbox_id)
        if as_json:
            emit_json(sandbox.exec.run(argv, timeout=timeout, check_timeout=False))
            return
        process = sandbox.exec.start(argv, timeout=timeout)
        process.close_stdin()
        for chunk in process:
            target = sys.stdout if chunk.stream == "stdout" else sys.stderr
            target.buffer.write(chunk.data)
            target.flush()
        result = process.wait()
    except CoveError as exc:
        fail(exc)
    raise typer.Exit(result.exit_code if result.exit_code is not None else 1)


@app.command()
def kill(sandbox_id: str, as_json: JsonOpt = False) -> None:
    """Kill a sandbox and free its resources."""
    try:
        info = Sandbox.connect(sandbox_id).kill()
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(info)
    else:
        print(f"{info.id} {info.state}")

"""``cove checkpoint create|ls|rm|restore``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cove.cli._output import emit_json, fail, table
from cove.sdk import Checkpoint, CoveError, Sandbox

app = typer.Typer(help="Checkpoint a sandbox's files, list, delete and restore checkpoints.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _rows(checkpoints: list[Checkpoint]) -> list[list[object]]:
    now = time.time()
    return [[c.id, c.name or "", f"{int(now - c.created_at)}s ago", f"{c.size_bytes:,}"] for c in checkpoints]


@app.command()
def create(
    sandbox_id: str,
    name: Annotated[str | None, typer.Option(help="A label for the checkpoint")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Checkpoint SANDBOX_ID's files and print the checkpoint's id (fork it: cove sandbox create
    --from-checkpoint ID)."""
    try:
        checkpoint = Sandbox.connect(sandbox_id).checkpoint(name)
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(checkpoint)
    else:
        print(checkpoint.id)


@app.command("ls")
def list_checkpoints(sandbox_id: str, as_json: JsonOpt = False) -> None:
    """List SANDBOX_ID's checkpoints, oldest first."""
    try:
        checkpoints = Sandbox.connect(sandbox_id).checkpoints()
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(checkpoints)
    else:
        table(["ID", "NAME", "CREATED", "BYTES ADDED"], _rows(checkpoints))


@app.command("rm")
def remove(sandbox_id: str, checkpoint_id: str) -> None:
    """Delete CHECKPOINT_ID of SANDBOX_ID; forks of it keep their files."""
    try:
        Sandbox.connect(sandbox_id).delete_checkpoint(checkpoint_id)
    except CoveError as exc:
        fail(exc)
    print(f"{checkpoint_id} deleted")


@app.command()
def restore(sandbox_id: str, checkpoint_id: str) -> None:
    """Put SANDBOX_ID's files back to CHECKPOINT_ID in place; its processes are killed, not restored."""
    try:
        info = Sandbox.connect(sandbox_id).restore(checkpoint_id)
    except CoveError as exc:
        fail(exc)
    print(f"{info.id} {info.state}")

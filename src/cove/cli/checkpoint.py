"""``cove checkpoint create|ls|rm|restore``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cove.cli._output import Column, JsonOpt, command, emit, emit_json, table
from cove.cli.sandbox import SandboxArg
from cove.sdk import Checkpoint, Sandbox

app = typer.Typer(help="Checkpoint a sandbox's files, list, delete and restore checkpoints.", no_args_is_help=True)
CheckpointArg = Annotated[str, typer.Argument(metavar="CHECKPOINT", help="A checkpoint id (ckpt_…)")]


def _rows(checkpoints: list[Checkpoint]) -> list[list[object]]:
    now = time.time()
    return [[c.id, c.name or "", f"{int(now - c.created_at)}s ago", f"{c.size_bytes:,}"] for c in checkpoints]


@command(app)
def create(
    sandbox_id: SandboxArg,
    name: Annotated[str | None, typer.Option(help="A label for the checkpoint")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Checkpoint SANDBOX's files and print the checkpoint's id (fork it: cove sandbox create
    --from-checkpoint ID)."""
    checkpoint = Sandbox.connect(sandbox_id).checkpoint(name)
    emit(checkpoint, as_json, checkpoint.id)


@command(app, "ls")
def list_checkpoints(sandbox_id: SandboxArg, as_json: JsonOpt = False) -> None:
    """List SANDBOX's checkpoints, oldest first."""
    checkpoints = Sandbox.connect(sandbox_id).checkpoints()
    if as_json:
        emit_json(checkpoints)
    else:
        table(
            [Column("CHECKPOINT", id=True), Column("NAME"), Column("CREATED"), Column("BYTES ADDED")],
            _rows(checkpoints),
        )


@command(app, "rm")
def remove(sandbox_id: SandboxArg, checkpoint_id: CheckpointArg, as_json: JsonOpt = False) -> None:
    """Delete a checkpoint of SANDBOX; forks of it keep their files."""
    deleted = Sandbox.connect(sandbox_id).delete_checkpoint(checkpoint_id)
    emit(deleted, as_json, f"{deleted.id} deleted")


@command(app)
def restore(sandbox_id: SandboxArg, checkpoint_id: CheckpointArg, as_json: JsonOpt = False) -> None:
    """Put SANDBOX's files back to CHECKPOINT in place; its processes are killed, not restored."""
    info = Sandbox.connect(sandbox_id).restore(checkpoint_id)
    emit(info, as_json, f"{info.id} {info.state}")

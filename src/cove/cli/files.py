"""``cove files get|put|ls``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cove.cli._output import Column, JsonOpt, command, emit, emit_json, table, transfer_progress
from cove.cli.sandbox import SandboxArg
from cove.sdk import Sandbox

app = typer.Typer(help="Move files in and out of a sandbox, and list them.", no_args_is_help=True)
InSandbox = Annotated[str, typer.Argument(metavar="PATH", help="A path in the sandbox, relative to /workspace")]


@command(app)
def get(
    sandbox_id: SandboxArg,
    path: InSandbox,
    destination: Annotated[
        Path | None, typer.Argument(help="Local file or directory (default: PATH's name, here)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download PATH from the sandbox. The local file appears only once the download is complete."""
    target = destination or Path(Path(path).name)
    if target.is_dir():
        target = target / Path(path).name
    with transfer_progress(f"get {path}") as progress:
        size = Sandbox.connect(sandbox_id).files.download(path, target, on_progress=progress)
    emit({"path": str(target), "size": size}, as_json, f"{target} ({size:,} bytes)")


@command(app)
def put(
    sandbox_id: SandboxArg,
    source: Annotated[Path, typer.Argument(help="A local file")],
    path: InSandbox,
    as_json: JsonOpt = False,
) -> None:
    """Upload local SOURCE to PATH in the sandbox (streamed; parent directories are made)."""
    if not source.is_file():
        raise typer.BadParameter(f"{source} is not a file", param_hint="SOURCE")
    with transfer_progress(f"put {source.name}") as progress:
        info = Sandbox.connect(sandbox_id).files.write(path, source, on_progress=progress)
    emit(info, as_json, f"{info.path} ({info.size:,} bytes)")


@command(app, "ls")
def list_files(
    sandbox_id: SandboxArg,
    path: Annotated[str, typer.Argument(metavar="PATH", help="A directory in the sandbox")] = "/workspace",
    as_json: JsonOpt = False,
) -> None:
    """List a directory in the sandbox."""
    entries = Sandbox.connect(sandbox_id).files.list(path)
    if as_json:
        emit_json(entries)
    else:
        table(
            [Column("NAME", id=True), Column("TYPE"), Column("SIZE"), Column("MODE")],
            [[e.name, e.type, f"{e.size:,}", oct(e.mode)] for e in entries],
        )

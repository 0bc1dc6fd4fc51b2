"""``cove files get|put|ls``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cove.cli._output import emit_json, fail, table
from cove.sdk import CoveError, Sandbox

app = typer.Typer(help="Move files in and out of a sandbox.", no_args_is_help=True)


@app.command()
def get(sandbox_id: str, path: str, destination: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Download PATH from the sandbox (to DESTINATION, default its basename here)."""
    target = destination or Path(Path(path).name)
    try:
        size = Sandbox.connect(sandbox_id).files.download(path, target)
    except CoveError as exc:
        fail(exc)
    print(f"{target} ({size} bytes)")


@app.command()
def put(sandbox_id: str, source: Path, path: str) -> None:
    """Upload local SOURCE to PATH in the sandbox (streamed)."""
    if not source.is_file():
        raise typer.BadParameter(f"{source} is not a file")
    try:
        info = Sandbox.connect(sandbox_id).files.write(path, source)
    except CoveError as exc:
        fail(exc)
    print(f"{info.path} ({info.size} bytes)")


@app.command("ls")
def list_files(
    sandbox_id: str,
    path: Annotated[str, typer.Argument()] = "/workspace",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List a directory in the sandbox."""
    try:
        entries = Sandbox.connect(sandbox_id).files.list(path)
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(entries)
    else:
        table(["NAME", "TYPE", "SIZE", "MODE"], [[e.name, e.type, e.size, oct(e.mode)] for e in entries])

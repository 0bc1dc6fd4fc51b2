"""Readable tables by default, JSON for scripts: one place decides how the CLI prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from cove.sdk import CoveError

console = Console()


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    grid = Table(*columns, box=None, header_style="bold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(grid)


def fail(exc: CoveError) -> NoReturn:
    Console(stderr=True).print(f"[red]error[/red] ({exc.code}): {exc.message}")
    raise typer.Exit(1)

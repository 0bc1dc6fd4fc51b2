"""Readable tables by default, JSON for scripts, errors in the command's own words: one place decides how the
CLI prints."""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import shutil
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from typer.models import ArgumentInfo, OptionInfo

from cove.sdk import CoveError, InvalidRequest

errors = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of text")]
# Transfers smaller than this are over before a bar would say anything.
PROGRESS_FROM_BYTES = 4 * 1024 * 1024


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def emit(value: Any, as_json: bool, text: str) -> None:
    """The value as JSON for a script (``--json``), or one line of text for a person."""
    if as_json:
        emit_json(value)
    else:
        print(text)


@dataclass(frozen=True)
class Column:
    """A table column; an ``id`` column is never cut or wrapped, so its ids can be copied at any width."""

    header: str
    id: bool = False


def table(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> None:
    """Rows in aligned columns, each on one line. On a terminal narrower than the rows, the widest columns that
    are not ids are cut (with …); ids never are. Piped output is never cut."""
    cells = [[" ".join(str(cell).split()) if cell is not None else "" for cell in row] for row in rows]
    widths = [max([len(column.header), *(len(row[i]) for row in cells)]) for i, column in enumerate(columns)]
    room = _terminal_width()
    while room is not None and sum(widths) + 2 * (len(widths) - 1) > room:
        cuttable = [i for i, column in enumerate(columns) if not column.id and widths[i] > len(column.header)]
        if not cuttable:
            break
        widths[max(cuttable, key=lambda i: widths[i])] -= 1
    for row in [[column.header for column in columns], *cells]:
        line = "  ".join(
            (cell if len(cell) <= width else cell[: width - 1] + "…").ljust(width)
            for cell, width in zip(row, widths, strict=True)
        )
        print(line.rstrip())


def _terminal_width() -> int | None:
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def details(pairs: Sequence[tuple[str, Any]]) -> None:
    """``name  value`` lines, for one object (``cove sandbox info``)."""
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        print(f"{name:<{width}}  {'' if value is None else value}")


def note(text: str) -> None:
    """A line for the person at the terminal, on stderr, so that stdout stays what scripts read."""
    errors.print(escape(text), highlight=False, soft_wrap=True)


def fail(exc: CoveError, options: dict[str, str] | None = None) -> NoReturn:
    """Print the error and exit 1; a validation error names the fields as the command's ``options`` do."""
    message = exc.message
    if isinstance(exc, InvalidRequest) and options:
        message = _in_option_names(message, options)
    errors.print(f"[red]error[/red] ({exc.code}): {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


P = ParamSpec("P")
R = TypeVar("R")


def command(app: typer.Typer, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``app.command()``, and an error from the server ends the command as ``fail`` does, in its words."""

    def register(function: Callable[P, R]) -> Callable[P, R]:
        options = _options_of(function)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except CoveError as exc:
                fail(exc, options)

        app.command(name)(run)
        return run

    return register


def _options_of(function: Callable[..., Any]) -> dict[str, str]:
    """Each parameter of a command (and its plural, as the server names lists) → how the user spells it."""
    hints = typing.get_type_hints(function, include_extras=True)
    names: dict[str, str] = {}
    for parameter in inspect.signature(function).parameters:
        info = next(
            (m for m in getattr(hints.get(parameter), "__metadata__", ()) if isinstance(m, ArgumentInfo | OptionInfo)),
            None,
        )
        if isinstance(info, ArgumentInfo):
            shown = info.metavar or parameter.upper()
        else:
            declared = (
                [d for d in (info.param_decls or ()) if d.startswith("--")] if isinstance(info, OptionInfo) else []
            )
            shown = declared[0] if declared else "--" + parameter.replace("_", "-")
        names[parameter] = names[parameter + "s"] = shown
    return names


# The server names a field by its path in the request body ("limits.memory_mb: …", "; "-separated).
_FIELD = re.compile(r"(?:^|(?<=; ))([A-Za-z_][\w.-]*): ")


def _in_option_names(message: str, options: dict[str, str]) -> str:
    def option(match: re.Match[str]) -> str:
        for part in reversed(match.group(1).split(".")):
            if part in options:
                return f"{options[part]}: "
        return match.group(0)

    return _FIELD.sub(option, message)


@contextmanager
def transfer_progress(description: str) -> Iterator[Callable[[int, int | None], None]]:
    """A progress callback for ``files.write`` and ``files.download``: a bar on stderr once a transfer turns out
    to be larger than a few MB (small ones stay quiet)."""
    progress = Progress(
        TextColumn(escape(description)), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=errors
    )
    task: list[Any] = []

    def update(done: int, total: int | None) -> None:
        if not task:
            if max(done, total or 0) < PROGRESS_FROM_BYTES:
                return
            progress.start()
            task.append(progress.add_task(description, total=total))
        progress.update(task[0], completed=done)

    try:
        yield update
    finally:
        if task:
            progress.stop()

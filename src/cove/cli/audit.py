"""``cove audit``: the calls that changed something, newest first (the admin's)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import typer

from cove.cli._output import Column, JsonOpt, emit_json, table
from cove.sdk import audit_trail

_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def since_seconds(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d`` → how many seconds ago."""
    match = _AGO.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: expected a duration such as 90s, 15m, 2h or 7d", param_hint="--since")
    return float(match.group(1)) * _UNITS[match.group(2)]


def audit(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's calls (a key's id)")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. sandboxes.kill_sandbox")] = None,
    since: Annotated[str | None, typer.Option(help="Only the last 90s, 15m, 2h, 7d…")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """The audit trail: who (key or token) did what, to what, with which status, from where — newest first."""
    entries = audit_trail(tenant_id=tenant, action=action, since=-since_seconds(since) if since else None, limit=limit)
    if as_json:
        emit_json(entries)
        return
    table(
        [
            Column("TIME"),
            Column("BY", id=True),
            Column("TENANT"),
            Column("ACTION", id=True),
            Column("TARGET"),
            Column("STATUS"),
            Column("CLIENT"),
        ],
        [
            [
                datetime.fromtimestamp(e.time).isoformat(sep=" ", timespec="seconds"),
                e.by or "-",
                e.tenant_id or "-",
                e.action,
                e.target or "",
                e.status,
                e.client or "",
            ]
            for e in entries
        ],
    )

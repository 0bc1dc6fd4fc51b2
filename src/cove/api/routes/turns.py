"""The diff of an agent turn: ``GET /v1/sandboxes/{id}/agent/{session}/turns/{n}/diff``, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.wire.bounds import MAX_SEQ
from cove.wire.turns import DEFAULT_DIFF_PAGE, MAX_DIFF_PAGE, FileChange, TurnDiff

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/agent/{session_id}/turns", tags=["agent"])


@router.get("/{turn}/diff", response_model=TurnDiff)
async def turn_diff(
    sandbox_id: str,
    session_id: str,
    turn: Annotated[int, Path(ge=1, lt=MAX_SEQ)],
    who: PrincipalDep,
    svc: ServicesDep,
    cursor: Annotated[
        str | None, Query(max_length=32, description="The next_cursor of the page before; none: the first page")
    ] = None,
    limit: Annotated[int, Query(ge=1024, le=MAX_DIFF_PAGE, description="Bytes of diff at most in the page")] = (
        DEFAULT_DIFF_PAGE
    ),
) -> TurnDiff:
    """What the turn changed under /workspace, as ``git diff`` writes it: text files line by line, binary and
    large files named. Pages hold whole lines; follow ``next_cursor`` until it is null."""
    page = await svc.sessions.diff(who, sandbox_id, session_id, turn, cursor, limit)
    return TurnDiff(
        turn=page.turn,
        files=[FileChange(**entry) for entry in page.files],
        diff=page.diff,
        next_cursor=page.next_cursor,
        total_files=page.total_files,
    )

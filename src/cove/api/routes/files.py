"""Routes for files: streaming download and upload (never buffered whole), list, stat, mkdir, remove, rename."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.wire import Exists, FileInfo, FileList, MkdirRequest, RenameRequest
from cove.wire.bounds import MAX_LIST, MAX_PATH

router = APIRouter(prefix="/v1/sandboxes/{sandbox_id}/files", tags=["files"])
PathQuery = Annotated[
    str,
    Query(min_length=1, max_length=MAX_PATH, description="Path inside the sandbox; relative to /workspace"),
]


@router.get("", response_class=StreamingResponse, responses={200: {"content": {"application/octet-stream": {}}}})
async def download(sandbox_id: str, path: PathQuery, who: PrincipalDep, svc: ServicesDep) -> StreamingResponse:
    # The guest connection must outlive this function: the response body streams after it returns.
    context = svc.files.read(who, sandbox_id, path)
    size, chunks = await context.__aenter__()

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await context.__aexit__(None, None, None)

    return StreamingResponse(body(), media_type="application/octet-stream", headers={"content-length": str(size)})


@router.put("", response_model=FileInfo)
async def upload(
    sandbox_id: str,
    path: PathQuery,
    request: Request,
    who: PrincipalDep,
    svc: ServicesDep,
    mode: Annotated[int | None, Query(ge=0, le=0o7777, description="File mode, e.g. 493 for 0755")] = None,
) -> FileInfo:
    return FileInfo(**await svc.files.write(who, sandbox_id, path, request.stream(), mode))


@router.get("/list", response_model=FileList)
async def list_dir(
    sandbox_id: str,
    who: PrincipalDep,
    svc: ServicesDep,
    path: PathQuery = "/workspace",
    after: Annotated[str | None, Query(max_length=255, description="List the names after this one")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST, description="At most this many entries")] = MAX_LIST,
) -> FileList:
    page = await svc.files.list(who, sandbox_id, path, after, limit)
    return FileList(entries=[FileInfo(**e) for e in page["entries"]], has_more=bool(page["has_more"]))


@router.get("/stat", response_model=FileInfo)
async def stat(sandbox_id: str, path: PathQuery, who: PrincipalDep, svc: ServicesDep) -> FileInfo:
    return FileInfo(**await svc.files.stat(who, sandbox_id, path))


@router.get("/exists", response_model=Exists)
async def exists(sandbox_id: str, path: PathQuery, who: PrincipalDep, svc: ServicesDep) -> Exists:
    return Exists(exists=await svc.files.exists(who, sandbox_id, path))


@router.post("/mkdir", response_model=FileInfo)
async def mkdir(sandbox_id: str, body: MkdirRequest, who: PrincipalDep, svc: ServicesDep) -> FileInfo:
    return FileInfo(**await svc.files.mkdir(who, sandbox_id, body.path, body.parents))


@router.delete("", status_code=204)
async def remove(
    sandbox_id: str, path: PathQuery, who: PrincipalDep, svc: ServicesDep, recursive: bool = False
) -> None:
    await svc.files.remove(who, sandbox_id, path, recursive)


@router.post("/rename", response_model=FileInfo)
async def rename(sandbox_id: str, body: RenameRequest, who: PrincipalDep, svc: ServicesDep) -> FileInfo:
    return FileInfo(**await svc.files.rename(who, sandbox_id, body.source, body.destination))

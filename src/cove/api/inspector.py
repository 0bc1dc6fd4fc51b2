"""The Inspector, Cove's web page (``ui/``), served as static files at ``/ui/``; ``/`` redirects there.

The page itself holds no secret and needs no key: it signs in from the browser (an API key kept in session
storage) or takes a scoped token from its link, and talks to ``/v1`` like any client. So these routes are open,
and every reply carries a strict Content-Security-Policy: the page renders what sandboxes write (event text,
file contents), and the policy makes sure none of it can ever run as script or reach another origin.

Files are served only from the list made when the app starts (no path from a request ever reaches the file
system), with the gzip or brotli twin that ``ui/build.mjs`` writes next to each when the browser accepts it.
Any other path under ``/ui/`` is a view of the page (``/ui/sandboxes/sbx_…/sessions/ses_…``) and gets
``index.html``, which routes in the browser.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

import cove

log = logging.getLogger("cove.inspector")

# Where `make ui` (ui/build.mjs) writes the built page: inside the package, so an install carries it.
BUILT = Path(cove.__file__).parent / "inspector"
PREFIX = "/ui"

# script-src 'self' only: no inline script, no eval, nothing from elsewhere. Images may be blob: URLs (a file of a
# sandbox, fetched with the key, shown without a URL that carries it); connections go to this origin only (its
# WebSockets included). require-trusted-types-for makes the DOM refuse any string as HTML, so text a sandbox wrote
# can only ever be text.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ]
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    # A shared link carries its token in the query: no other site ever sees it in a Referer.
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
# Hashed names never change content; index.html must be fetched again to learn new ones.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Cove Inspector</title>
<p>The Inspector is not built. In a clone of Cove, run <code>make ui</code> (or <code>make demo</code>, which builds
it too), then start <code>cove serve</code> again.</p>
"""


@dataclass(frozen=True)
class _File:
    path: Path
    media_type: str
    encoded: dict[str, Path]  # content-coding -> the precompressed twin


def _catalogue(directory: Path) -> dict[str, _File]:
    """Every file of the built page by its path under /ui/, with its precompressed twins."""
    files: dict[str, _File] = {}
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix in (".br", ".gz"):
            continue
        name = path.relative_to(directory).as_posix()
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in ("application/javascript", "image/svg+xml"):
            media_type += "; charset=utf-8"
        twins = {coding: path.with_name(path.name + suffix) for coding, suffix in ENCODINGS}
        files[name] = _File(path, media_type, {c: p for c, p in twins.items() if p.is_file()})
    return files


def _accepted(request: Request) -> set[str]:
    header = request.headers.get("accept-encoding", "")
    return {part.split(";")[0].strip().lower() for part in header.split(",")}


def _send(request: Request, file: _File, cache: str) -> Response:
    headers = {**HEADERS, "cache-control": cache, "vary": "accept-encoding"}
    accepted = _accepted(request)
    for coding, twin in file.encoded.items():
        if coding in accepted:
            headers["content-encoding"] = coding
            return FileResponse(twin, media_type=file.media_type, headers=headers)
    return FileResponse(file.path, media_type=file.media_type, headers=headers)


def install(app: FastAPI, directory: Path = BUILT) -> None:
    """Serve the page built in ``directory`` at /ui/, and redirect / there. A server whose page was never built
    still starts: /ui/ then says how to build it."""
    files = _catalogue(directory) if directory.is_dir() else {}
    index = files.get("index.html")
    if index is None:
        log.warning("the Inspector (/ui/) is not built; `make ui` builds it")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    @app.api_route(PREFIX, methods=["GET", "HEAD"], include_in_schema=False)
    async def to_page() -> RedirectResponse:
        return RedirectResponse(PREFIX + "/", status_code=307)

    @app.api_route(PREFIX + "/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def page(name: str, request: Request) -> Response:
        if index is None:
            return HTMLResponse(NOT_BUILT, status_code=503, headers={**HEADERS, "cache-control": REVALIDATE})
        file = files.get(name)
        if file is not None and file is not index:
            return _send(request, file, IMMUTABLE if name.startswith("assets/") else REVALIDATE)
        if name.startswith("assets/"):  # a stale hashed name: a 404, not the page in its place
            return Response(status_code=404, headers=HEADERS)
        return _send(request, index, REVALIDATE)

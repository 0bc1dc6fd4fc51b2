"""Where a preview answers, in one place: built here for the API's replies, matched here for each request.

- Path-based, always: ``{COVE_URL}/v1/sandboxes/{id}/ports/{port}/``; the app sees the path after the prefix.
- Host-based, with a preview domain: ``http://{port}-{id}.{domain}/``, routed by the Host header; the app owns
  ``/`` (for apps that link to absolute paths).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_PATH = re.compile(rb"/v1/sandboxes/(sbx_[0-9a-f]{16})/ports/([1-9][0-9]{0,4})(/.*)?", re.DOTALL)
_LABEL = re.compile(r"([1-9][0-9]{0,4})-(sbx_[0-9a-f]{16})")


@dataclass(frozen=True)
class Target:
    """A request for a preview: the port it is for, the prefix the app is mounted at (empty when host-based),
    and the path the app sees — empty for the bare prefix without its slash, which is not the app's."""

    sandbox_id: str
    port: int
    prefix: str
    path: bytes


def path_prefix(sandbox_id: str, port: int) -> str:
    return f"/v1/sandboxes/{sandbox_id}/ports/{port}"


def preview_url(sandbox_id: str, port: int, base_url: str, domain: str | None) -> str:
    """The URL to give out: host-based under ``domain`` when there is one (in ``base_url``'s scheme), else
    path-based on ``base_url`` (the Cove server as its clients reach it)."""
    if domain:
        return f"{urlsplit(base_url).scheme or 'http'}://{port}-{sandbox_id}.{domain}/"
    return f"{base_url.rstrip('/')}{path_prefix(sandbox_id, port)}/"


def _hostname(host: str) -> str:
    """``host`` without its port, lower-cased (a bracketed IPv6 address keeps its brackets)."""
    if host.startswith("["):
        return host.partition("]")[0].lower() + "]"
    return host.partition(":")[0].lower()


def match(raw_path: bytes, host: str | None, domain: str | None) -> Target | None:
    """The preview a request is for, if any: by its Host under ``domain``, else by its path."""
    if domain and host:
        label, dot, rest = _hostname(host).partition(".")
        found = _LABEL.fullmatch(label) if dot and rest == _hostname(domain) else None
        if found and int(found[1]) <= 65535:
            return Target(found[2], int(found[1]), "", raw_path)
    found_path = _PATH.fullmatch(raw_path)
    if found_path is None or int(found_path[2]) > 65535:
        return None
    sandbox_id, port = found_path[1].decode(), int(found_path[2])
    return Target(sandbox_id, port, path_prefix(sandbox_id, port), found_path[3] or b"")

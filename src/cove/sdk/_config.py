"""Where the SDK finds its server and key: arguments, then COVE_URL / COVE_API_KEY, then local defaults."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from cove.config import ADMIN_KEY_FILE, DEFAULT_URL, cove_home

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get("COVE_URL") or DEFAULT_URL).rstrip("/")


def resolve_key(url: str, api_key: str | None) -> str | None:
    """For a server on this machine, fall back to the admin key it stored on first start."""
    key = api_key or os.environ.get("COVE_API_KEY")
    if key:
        return key
    if urlparse(url).hostname in LOCAL_HOSTS:
        path = cove_home() / ADMIN_KEY_FILE
        try:
            return path.read_text().strip() or None
        except OSError:
            return None
    return None

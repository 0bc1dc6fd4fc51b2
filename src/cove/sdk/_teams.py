"""Keys, tokens, quotas and the audit trail (docs/teams.md), async: what ``cove keys``, ``cove audit`` and
``cove usage`` are made of. The sync functions of the same names, exported from ``cove``, run these.

Managing keys and reading the audit trail take the admin key; a tenant's key reads its own usage and mints,
lists and revokes its own tokens (``sandbox.create_token``, ``session.create_token``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from cove.sdk._client import AsyncClient
from cove.wire import AuditEntry, KeyCreated, KeyInfo, Quotas, Scope, TokenCreated, TokenInfo, UsageReport


async def _call(method: str, path: str, url: str | None, api_key: str | None, **options: Any) -> Any:
    client = AsyncClient(url, api_key)
    try:
        return await client.request(method, path, **options)
    finally:
        await client.aclose()


def _quotas(quotas: Quotas | dict[str, Any] | None) -> dict[str, Any] | None:
    """Only what was given: what is left out keeps its value (a model's unset fields included)."""
    if isinstance(quotas, Quotas):
        return quotas.model_dump(exclude_unset=True)
    return quotas


async def mint_token(
    client: AsyncClient, sandbox_id: str, session_id: str | None, scopes: Iterable[Scope], ttl_s: int
) -> TokenCreated:
    body = {"sandbox_id": sandbox_id, "session_id": session_id, "scopes": list(scopes), "ttl_s": ttl_s}
    return TokenCreated(**await client.request("POST", "/v1/tokens", json=body))


async def create_key(
    name: str,
    *,
    quotas: Quotas | dict[str, Any] | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> KeyCreated:
    """A new tenant's key (admin). ``created.key`` is its secret, shown this once; quotas left out are the
    server's defaults for new keys, and a ``None`` removes a bound."""
    body = {"name": name, "quotas": _quotas(quotas)}
    return KeyCreated(**await _call("POST", "/v1/keys", url, api_key, json=body))


async def list_keys(
    *, include_revoked: bool = False, url: str | None = None, api_key: str | None = None
) -> list[KeyInfo]:
    reply = await _call("GET", "/v1/keys", url, api_key, params={"include_revoked": include_revoked})
    return [KeyInfo(**key) for key in reply["keys"]]


async def update_key(
    key_id: str, *, quotas: Quotas | dict[str, Any], url: str | None = None, api_key: str | None = None
) -> KeyInfo:
    """Change a tenant's quotas: those given, the others kept."""
    body = {"quotas": _quotas(quotas)}
    return KeyInfo(**await _call("PATCH", f"/v1/keys/{key_id}", url, api_key, json=body))


async def revoke_key(key_id: str, *, url: str | None = None, api_key: str | None = None) -> KeyInfo:
    """Revoke a tenant's key now: its tokens with it, and its open streams are closed."""
    return KeyInfo(**await _call("DELETE", f"/v1/keys/{key_id}", url, api_key))


async def list_tokens(*, url: str | None = None, api_key: str | None = None) -> list[TokenInfo]:
    """The live tokens of this key's tenant (the admin: every tenant's)."""
    return [TokenInfo(**token) for token in (await _call("GET", "/v1/tokens", url, api_key))["tokens"]]


async def revoke_token(token_id: str, *, url: str | None = None, api_key: str | None = None) -> TokenInfo:
    return TokenInfo(**await _call("DELETE", f"/v1/tokens/{token_id}", url, api_key))


async def usage(*, tenant_id: str | None = None, url: str | None = None, api_key: str | None = None) -> UsageReport:
    """This key's tenant's use against its quotas and its agents' tokens (the admin: ``tenant_id``'s)."""
    params = {"tenant_id": tenant_id} if tenant_id else None
    return UsageReport(**await _call("GET", "/v1/usage", url, api_key, params=params))


async def audit_trail(
    *,
    tenant_id: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 1000,
    url: str | None = None,
    api_key: str | None = None,
) -> list[AuditEntry]:
    """The calls that changed something, newest first (admin): at most ``limit``, of ``tenant_id``, of
    ``action`` (``sandboxes.kill_sandbox``), between ``since`` and ``until`` (Unix times; ``since`` may be
    negative: that many seconds ago)."""
    if since is not None and since < 0:
        since = time.time() + since
    filters = {"tenant_id": tenant_id, "action": action, "since": since, "until": until}
    entries: list[AuditEntry] = []
    client = AsyncClient(url, api_key)
    try:
        while len(entries) < limit:
            params = {k: v for k, v in filters.items() if v is not None} | {"limit": min(limit - len(entries), 10_000)}
            if entries:
                params["before"] = entries[-1].id
            page = await client.request("GET", "/v1/audit", params=params)
            entries += [AuditEntry(**entry) for entry in page["entries"]]
            if not page["has_more"]:
                break
    finally:
        await client.aclose()
    return entries

"""The sync twins of ``_teams``: the same calls, waited for on the SDK's background loop."""

from __future__ import annotations

from typing import Any

from cove.sdk import _teams
from cove.sdk._portal import call
from cove.wire import AuditEntry, KeyCreated, KeyInfo, Quotas, TokenInfo, UsageReport


def create_key(
    name: str, *, quotas: Quotas | dict[str, Any] | None = None, url: str | None = None, api_key: str | None = None
) -> KeyCreated:
    """A new tenant's key (admin); ``created.key`` is its secret, shown this once.

    >>> alice = cove.create_key("alice", quotas={"running_sandboxes": 2})
    """
    return call(_teams.create_key(name, quotas=quotas, url=url, api_key=api_key))


def list_keys(*, include_revoked: bool = False, url: str | None = None, api_key: str | None = None) -> list[KeyInfo]:
    return call(_teams.list_keys(include_revoked=include_revoked, url=url, api_key=api_key))


def update_key(
    key_id: str, *, quotas: Quotas | dict[str, Any], url: str | None = None, api_key: str | None = None
) -> KeyInfo:
    """Change a tenant's quotas: those given, the others kept."""
    return call(_teams.update_key(key_id, quotas=quotas, url=url, api_key=api_key))


def revoke_key(key_id: str, *, url: str | None = None, api_key: str | None = None) -> KeyInfo:
    """Revoke a tenant's key now: its tokens with it, and its open streams are closed."""
    return call(_teams.revoke_key(key_id, url=url, api_key=api_key))


def list_tokens(*, url: str | None = None, api_key: str | None = None) -> list[TokenInfo]:
    return call(_teams.list_tokens(url=url, api_key=api_key))


def revoke_token(token_id: str, *, url: str | None = None, api_key: str | None = None) -> TokenInfo:
    return call(_teams.revoke_token(token_id, url=url, api_key=api_key))


def usage(*, tenant_id: str | None = None, url: str | None = None, api_key: str | None = None) -> UsageReport:
    """This key's tenant's use against its quotas and its agents' tokens (the admin: ``tenant_id``'s)."""
    return call(_teams.usage(tenant_id=tenant_id, url=url, api_key=api_key))


def audit_trail(
    *,
    tenant_id: str | None = None,
    action: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 1000,
    url: str | None = None,
    api_key: str | None = None,
) -> list[AuditEntry]:
    """The calls that changed something, newest first (admin); ``since=-3600``: the last hour."""
    return call(
        _teams.audit_trail(
            tenant_id=tenant_id, action=action, since=since, until=until, limit=limit, url=url, api_key=api_key
        )
    )

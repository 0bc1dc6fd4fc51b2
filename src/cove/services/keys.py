"""KeyService: API keys — the admin's, made on first start, and the tenants' keys the admin makes and revokes.

Every key but the admin's is a tenant, whose id is the key's: what it creates is stored with that id, and what it
may use is the key's quotas. Keys are few and read on every request, so all of them are kept in memory (by the
hash of the secret; the secret itself is shown once, when the key is made, and never stored). A revoked key stops
working at once — its tokens with it — and every stream it holds open is ended (``services.streams``).
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path
from typing import Any

from cove.quotas import Quotas
from cove.services.errors import Conflict, KeyNotFound
from cove.services.principal import Access, Principal
from cove.services.streams import OpenStreams
from cove.store.keys import KeyRecord, KeyStore, hash_key, new_key, new_key_id


class KeyService:
    def __init__(self, store: KeyStore, streams: OpenStreams, default_quotas: Quotas) -> None:
        self._store = store
        self._streams = streams
        self.default_quotas = default_quotas
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[str, KeyRecord] = {}

    async def load(self) -> None:
        for record in await self._store.all():
            self._keep(record)

    def _keep(self, record: KeyRecord) -> None:
        self._by_id[record.id] = record
        if record.revoked_at is None:
            self._by_hash[record.key_hash] = record
        else:
            self._by_hash.pop(record.key_hash, None)

    async def ensure_admin(self, path: Path) -> tuple[str, str | None]:
        """The admin key's id, and its secret if it was made now: on first start the key is made and written to
        ``path``, readable by this user alone; afterwards the key in ``path`` is (again) the admin's."""
        if path.exists():
            secret = path.read_text().strip()
            record = self._by_hash.get(hash_key(secret))
            if record is None:
                record = await self._add(secret, "admin", admin=True, quotas=None)
            elif not record.admin:  # a database from before tenants: its one key was the admin's
                await self._store.update(record.id, admin=1)
                record.admin = 1
            return record.id, None
        secret = new_key()
        record = await self._add(secret, "admin", admin=True, quotas=None)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        return record.id, secret

    async def _add(self, secret: str, name: str, *, admin: bool, quotas: Quotas | None) -> KeyRecord:
        record = KeyRecord(
            id=new_key_id(),
            key_hash=hash_key(secret),
            name=name,
            created_at=time.time(),
            admin=int(admin),
            quotas=quotas.to_json() if quotas is not None else None,
        )
        await self._store.insert(record)
        self._keep(record)
        return record

    # -- authentication ---------------------------------------------------------------------------------------

    def principal(self, secret: str) -> Principal | None:
        """The principal of a live key, or None. Keys are found by their SHA-256 (what an attacker's timing could
        tell is about the hash of what they sent, not about a key), and the hash is compared in constant time."""
        digest = hash_key(secret)
        record = self._by_hash.get(digest)
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            return None
        return self.principal_of(record)

    def principal_of(self, record: KeyRecord) -> Principal:
        return Principal(
            id=record.id,
            tenant_id=record.id,
            key_id=record.id,
            admin=bool(record.admin),
            quotas=self.quotas(record.id),
        )

    def known(self, key_id: str) -> bool:
        return key_id in self._by_id

    def active(self, key_id: str) -> bool:
        record = self._by_id.get(key_id)
        return record is not None and record.revoked_at is None

    def quotas(self, tenant_id: str) -> Quotas | None:
        """A tenant's quotas; None for the admin (and for a tenant without any)."""
        record = self._by_id.get(tenant_id)
        if record is None or record.admin or record.quotas is None:
            return None
        return Quotas.from_json(record.quotas)

    # -- managing keys (the admin's) -------------------------------------------------------------------------

    async def create(self, who: Principal, name: str, quotas: dict[str, Any] | None) -> tuple[KeyRecord, str]:
        """A new tenant's key and its secret (shown this once): the server's default quotas, with what
        ``quotas`` names instead (a null: no bound)."""
        who.require(Access.ADMIN, doing="manage keys")
        secret = new_key()
        record = await self._add(secret, name, admin=False, quotas=self.default_quotas.updated(quotas or {}))
        return record, secret

    def list(self, who: Principal, *, include_revoked: bool = False) -> list[KeyRecord]:
        who.require(Access.ADMIN, doing="manage keys")
        return [r for r in self._by_id.values() if include_revoked or r.revoked_at is None]

    def get(self, who: Principal, key_id: str) -> KeyRecord:
        who.require(Access.ADMIN, doing="manage keys")
        record = self._by_id.get(key_id)
        if record is None:
            raise KeyNotFound(f"no key with id {key_id!r}")
        return record

    async def set_quotas(self, who: Principal, key_id: str, changes: dict[str, Any]) -> KeyRecord:
        record = self.get(who, key_id)
        if record.admin:
            raise Conflict("the admin key has no quotas")
        current = Quotas.from_json(record.quotas) if record.quotas is not None else Quotas()
        record.quotas = current.updated(changes).to_json()
        await self._store.update(key_id, quotas=record.quotas)
        return record

    async def revoke(self, who: Principal, key_id: str) -> KeyRecord:
        """Revoke a tenant's key: it, and every token minted with it or for its tenant, stops working now, and
        every stream they hold open is ended. What the tenant owns stays, for the admin to see and stop."""
        record = self.get(who, key_id)
        if record.admin:
            raise Conflict(f"the admin key cannot be revoked (it is {Path('$COVE_HOME') / 'admin_key'})")
        if record.revoked_at is None:
            record.revoked_at = time.time()
            await self._store.update(key_id, revoked_at=record.revoked_at)
            self._keep(record)
            self._streams.end(key_id)
        return record

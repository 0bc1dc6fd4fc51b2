"""TokenService: scoped, expiring tokens for one sandbox (or one agent session in it), which a browser may hold
without the key behind them.

A token is ``cove_tok_<hex>.<expiry>.<signature>``: its id and expiry, signed (HMAC-SHA256) with the server's
secret (``$COVE_HOME/token_secret``, 0600). A forged or expired token is refused before anything is looked up;
a well-signed one is then checked against its row (its scopes, its sandbox, whether it was revoked) and against
its keys: the one that minted it and its tenant's must both still be live.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import secrets
import time

from cove.services.errors import TokenNotFound
from cove.services.keys import KeyService
from cove.services.principal import Access, Principal
from cove.services.sandboxes import SandboxService
from cove.services.sessions import SessionService
from cove.services.streams import OpenStreams
from cove.store.keys import KEY_PREFIX
from cove.store.tokens import TokenRecord, TokenStore
from cove.wire.tokens import Scope

TOKEN_PREFIX = KEY_PREFIX + "tok_"  # what a preview strips as a Cove credential strips tokens too
CACHED_TOKENS = 10_000


def is_token(credential: str) -> bool:
    """Tokens have dots; keys (``cove_`` and URL-safe base64) never do."""
    return credential.startswith(TOKEN_PREFIX) and "." in credential


class TokenService:
    def __init__(
        self,
        store: TokenStore,
        secret: bytes,
        keys: KeyService,
        sandboxes: SandboxService,
        sessions: SessionService,
        streams: OpenStreams,
    ) -> None:
        self._store = store
        self._secret = secret
        self._keys = keys
        self._sandboxes = sandboxes
        self._sessions = sessions
        self._streams = streams
        # Tokens read on every request they come with: the rows last used, revocations written through.
        self._cache: collections.OrderedDict[str, TokenRecord] = collections.OrderedDict()

    def _signature(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _sign(self, record: TokenRecord) -> str:
        payload = f"{record.id}.{int(record.expires_at)}"
        return f"{KEY_PREFIX}{payload}.{self._signature(payload)}"

    async def mint(
        self, who: Principal, sandbox_id: str, session_id: str | None, scopes: list[Scope], ttl_s: int
    ) -> tuple[TokenRecord, str]:
        """A token for ``sandbox_id`` (or ``session_id`` in it) with ``scopes``, for ``ttl_s`` seconds; its secret
        is in the reply only. Only a key that may see the sandbox mints one (a token never does)."""
        who.require(Access.OWN, doing="mint tokens")
        sandbox = await self._sandboxes.authorize(who, sandbox_id, Access.OWN, doing="mint tokens")
        if session_id is not None:
            await self._sessions.get(who, session_id, sandbox_id)
        now = time.time()
        record = TokenRecord(
            id="tok_" + secrets.token_hex(8),
            key_id=who.key_id,
            tenant_id=sandbox.tenant_id or who.tenant_id,
            sandbox_id=sandbox_id,
            session_id=session_id,
            scopes=sorted(set(scopes)),
            created_at=now,
            expires_at=float(int(now + ttl_s)),
        )
        await self._store.insert(record)
        self._remember(record)
        return record, self._sign(record)

    async def principal(self, credential: str) -> Principal | None:
        """The principal of a live token, or None (forged, expired, revoked, or its key revoked)."""
        try:
            token_id, expiry, signature = credential.removeprefix(KEY_PREFIX).rsplit(".", 2)
            expires_at = int(expiry)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._signature(f"{token_id}.{expiry}")) or expires_at <= time.time():
            return None
        record = await self._record(token_id)
        if record is None or record.revoked_at is not None or int(record.expires_at) != expires_at:
            return None
        if not (self._keys.active(record.key_id) and self._keys.active(record.tenant_id)):
            return None
        return Principal(
            id=record.id,
            tenant_id=record.tenant_id,
            key_id=record.key_id,
            scopes=frozenset(record.scopes),  # type: ignore[arg-type]  # the row holds what mint checked
            sandbox_id=record.sandbox_id,
            session_id=record.session_id,
            expires_at=record.expires_at,
            quotas=self._keys.quotas(record.tenant_id),
        )

    async def reissue(self, token_id: str) -> tuple[TokenRecord, str] | None:
        """A token's row and the token again (the string ``mint`` gave; only the server's secret makes it), or
        None for an unknown id: for a service that hands out again a token it minted, as a published port's
        expose and list do. Whether it still opens anything is ``principal``'s to say."""
        record = await self._record(token_id)
        return None if record is None else (record, self._sign(record))

    async def _record(self, token_id: str) -> TokenRecord | None:
        record = self._cache.get(token_id)
        if record is None:
            record = await self._store.get(token_id)
            if record is None:
                return None
            self._remember(record)
        self._cache.move_to_end(token_id)
        return record

    def _remember(self, record: TokenRecord) -> None:
        self._cache[record.id] = record
        while len(self._cache) > CACHED_TOKENS:
            self._cache.popitem(last=False)

    async def list(self, who: Principal) -> list[TokenRecord]:
        """The live tokens of ``who``'s tenant (every tenant's for the admin)."""
        who.require(Access.OWN, doing="list tokens")
        return await self._store.list(tenant_id=None if who.admin else who.tenant_id, live_at=time.time())

    async def revoke(self, who: Principal, token_id: str) -> TokenRecord:
        """Revoke a token now: it opens nothing more, and the streams it holds open end."""
        who.require(Access.OWN, doing="revoke tokens")
        record = await self._record(token_id)
        if record is None or not who.sees(record.tenant_id):
            raise TokenNotFound(f"no token with id {token_id!r}")
        if record.revoked_at is None:
            record.revoked_at = time.time()
            await self._store.revoke(token_id, record.revoked_at)
            self._streams.end(token_id)
        return record

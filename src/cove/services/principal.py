"""Who is asking: the principal a request's credential stands for, and what each operation needs of it.

Authentication (``api.auth``) turns a credential into a ``Principal``; from there it travels into the services,
which decide with it, in one place per kind of object (the sandbox lookup, the session lookup, the checkpoint
lookup), whether the object exists for the asker and whether the asker may do what it asks:

- **the admin key** sees everything and may do everything;
- **a tenant's key** (every other key) sees what its tenant owns — for anything else it is as if the object did
  not exist (404, the same answer as for an unknown id) — and may do everything to it but manage keys;
- **a scoped token** sees one sandbox of one tenant (or one agent session in it) and may do only what its scopes
  name; anything else it can see is refused with 403.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cove.quotas import Quotas
from cove.services.errors import Forbidden
from cove.wire.tokens import Scope


class Reach(enum.Enum):
    SESSION = "session"  # a session's token reaches it, for its own session
    SANDBOX = "sandbox"  # only a token for the whole sandbox
    KEY = "key"  # no token at all
    ADMIN = "admin"  # the admin key alone


class Access(enum.Enum):
    """What an operation needs: the token scope that opens it and how far into a sandbox it reaches."""

    VIEW = ("read", Reach.SESSION, "read")  # a sandbox's info, its sessions, their events
    READ = ("read", Reach.SANDBOX, "read files and processes")
    FILES = ("files", Reach.SANDBOX, "write files")
    EXEC = ("exec", Reach.SANDBOX, "run commands")
    START_AGENT = ("prompt", Reach.SANDBOX, "start agent sessions")
    PROMPT = ("prompt", Reach.SESSION, "prompt, interrupt or configure an agent")
    APPROVE = ("approve", Reach.SESSION, "answer permission requests")
    PREVIEW = ("preview", Reach.SANDBOX, "open published ports")  # the preview proxy's, once ports are served
    OWN = (None, Reach.KEY, "do this")  # create, kill, checkpoint, restore, mint tokens: an owner's acts
    ADMIN = (None, Reach.ADMIN, "do this")  # keys, the audit trail, the warm pool

    def __init__(self, scope: Scope | None, reach: Reach, doing: str) -> None:
        self.scope = scope
        self.reach = reach
        self.doing = doing


@dataclass(frozen=True)
class Principal:
    """A key or a token, as the services see it. ``id`` is what events and the audit trail name (``by``)."""

    id: str  # key_… or tok_…
    tenant_id: str  # the tenant it acts for: the id of the tenant's key (the admin key's own for the admin)
    key_id: str  # the key behind it: itself, or the key that minted the token
    admin: bool = False
    scopes: frozenset[Scope] | None = None  # None: a key
    sandbox_id: str | None = None  # a token's sandbox
    session_id: str | None = None  # a session token's session
    expires_at: float | None = None
    quotas: Quotas | None = None  # its tenant's; None: no quota (the admin)

    def sees(self, tenant_id: str | None, sandbox_id: str | None = None, session_id: str | None = None) -> bool:
        """Whether an object of ``tenant_id`` (in ``sandbox_id``, of ``session_id``) exists for this principal."""
        if self.admin:
            return True
        if tenant_id != self.tenant_id:
            return False
        if self.scopes is None:
            return True
        if sandbox_id is None or sandbox_id != self.sandbox_id:
            return False
        return self.session_id is None or session_id is None or session_id == self.session_id

    def may(self, access: Access) -> bool:
        if access.reach is Reach.ADMIN:
            return self.admin
        if self.scopes is None:
            return True
        if access.reach is Reach.KEY or (access.reach is Reach.SANDBOX and self.session_id is not None):
            return False
        return access.scope in self.scopes

    def require(self, access: Access, where: str = "", *, doing: str | None = None) -> None:
        """Raise ``Forbidden``, saying what would be needed, unless this principal may do ``access`` (``doing``,
        ``where``: the words of the refusal)."""
        if self.may(access):
            return
        act = " ".join(part for part in (doing or access.doing, where) if part)
        if access.reach is Reach.ADMIN:
            raise Forbidden(f"only the admin key may {act}")
        if access.reach is Reach.KEY:
            raise Forbidden(f"a token may not {act}: it needs an API key")
        if access.reach is Reach.SANDBOX and self.session_id is not None:
            raise Forbidden(f"a session's token may not {act}: it needs a token for the sandbox")
        raise Forbidden(f"this token may not {act}: it needs the {access.scope!r} scope")


# The server acting on its own (the reaper, a session's runner, a disk quota): sees and may do everything.
SYSTEM = Principal(id="server", tenant_id="server", key_id="server", admin=True)

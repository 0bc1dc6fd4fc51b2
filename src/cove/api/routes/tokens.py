"""Routes for scoped tokens: mint one for a sandbox (or a session of it), list the live ones, revoke one; and what
the credential of a request is (``whoami``, for a key or a token)."""

from __future__ import annotations

from fastapi import APIRouter

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.store.tokens import TokenRecord
from cove.wire import TokenCreate, TokenCreated, TokenInfo, TokenList, Whoami

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])
whoami_router = APIRouter(prefix="/v1/whoami", tags=["tokens"])


def token_info(record: TokenRecord) -> TokenInfo:
    return TokenInfo(
        id=record.id,
        sandbox_id=record.sandbox_id,
        session_id=record.session_id,
        scopes=record.scopes,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        key_id=record.key_id,
        tenant_id=record.tenant_id,
    )


@router.post("", status_code=201, response_model=TokenCreated)
async def create_token(body: TokenCreate, who: PrincipalDep, svc: ServicesDep) -> TokenCreated:
    """A token for one sandbox (or one agent session in it), with these scopes, for ``ttl_s`` seconds; the token
    is in this reply only. Only an API key mints one."""
    record, token = await svc.tokens.mint(who, body.sandbox_id, body.session_id, body.scopes, body.ttl_s)
    return TokenCreated(**token_info(record).model_dump(), token=token)


@router.get("", response_model=TokenList)
async def list_tokens(who: PrincipalDep, svc: ServicesDep) -> TokenList:
    """The tokens of this key's tenant that are neither expired nor revoked (the admin: every tenant's)."""
    return TokenList(tokens=[token_info(r) for r in await svc.tokens.list(who)])


@router.delete("/{token_id}", response_model=TokenInfo)
async def revoke_token(token_id: str, who: PrincipalDep, svc: ServicesDep) -> TokenInfo:
    """Revoke a token at once; the streams it holds open are closed."""
    return token_info(await svc.tokens.revoke(who, token_id))


@whoami_router.get("", response_model=Whoami)
async def whoami(who: PrincipalDep) -> Whoami:
    """The credential this request came with: a key (which may do everything its tenant may) or a token (its
    scopes, its sandbox and session, when it expires). Any valid credential may ask this of itself."""
    return Whoami(
        id=who.id,
        kind="key" if who.scopes is None else "token",
        tenant_id=who.tenant_id,
        admin=who.admin,
        scopes=sorted(who.scopes) if who.scopes is not None else None,
        sandbox_id=who.sandbox_id,
        session_id=who.session_id,
        expires_at=who.expires_at,
    )

"""Routes for the warm pool: look at it (and wait for it to fill), or drain it.

Benchmarks and tests wait on ``GET /v1/pool?wait=...`` to know a create will be a claim; operators drain the
pool before maintenance, and the test harness drains it so no pooled sandbox outlives a test server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from cove.api.auth import PrincipalDep
from cove.api.deps import ServicesDep
from cove.services.pool import WarmPool
from cove.wire.pool import PoolInfo

router = APIRouter(prefix="/v1/pool", tags=["pool"])
MAX_WAIT = 60.0


def _info(pool: WarmPool) -> PoolInfo:
    return PoolInfo(size=pool.size, ready=pool.ready, filling=pool.filling, failures=pool.failures)


@router.get("", response_model=PoolInfo)
async def get_pool(
    who: PrincipalDep,
    svc: ServicesDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="Seconds to wait for the pool to be full")] = 0,
    network: Annotated[
        Literal["egress", "none", "host"], Query(description="The pool serving this network mode")
    ] = "egress",
) -> PoolInfo:
    """The admin's: the pool serves every tenant. Sandboxes on the host's network have a pool of their own, which
    fills after the first of them is created."""
    pool = svc.sandboxes.warm_pool(who, host=network == "host")
    if wait:
        await pool.wait_full(wait)
    return _info(pool)


@router.delete("", response_model=PoolInfo)
async def drain_pool(who: PrincipalDep, svc: ServicesDep) -> PoolInfo:
    """Kill every pooled sandbox (of every network mode) and stop refilling until the server restarts; creates
    start cold."""
    pool = svc.sandboxes.warm_pool(who)
    await svc.sandboxes.drain_pools()
    return _info(pool)

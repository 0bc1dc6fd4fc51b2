"""Enforcing quotas: the check each service makes before it admits what a tenant asks for.

A check and the change it admits must not interleave with another of the same tenant (two creates must not both
take the last sandbox a quota allows), so each service holds its tenant's lock from one to the other. Only
tenants with quotas take a lock: the admin's requests never wait on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict

from cove.runtime.spec import Limits
from cove.services.errors import QuotaExceeded
from cove.services.principal import Principal


class QuotaLocks:
    def __init__(self) -> None:
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # one per tenant: bounded by keys

    def hold(self, who: Principal) -> AbstractAsyncContextManager[object]:
        return self._locks[who.tenant_id] if who.quotas is not None else contextlib.nullcontext()


def admit(quota: str, limit: int | None, used: float, adding: float, detail: str) -> None:
    """Refuse (429 ``quota_exceeded``, naming the quota and its value) when ``adding`` to ``used`` passes
    ``limit``."""
    if limit is not None and used + adding > limit:
        raise QuotaExceeded(f"quota {quota} is {limit}: {detail}")


def within(asked: Limits, chosen: Limits, largest: Limits) -> Limits:
    """A sandbox's limits under its tenant's largest: one it asked for above them is refused; one it left to the
    server's default (or none) is lowered to them."""
    bounded = asdict(chosen)
    for name, ceiling in asdict(largest).items():
        if ceiling is None:
            continue
        wanted = getattr(asked, name)
        if wanted is not None and wanted > ceiling:
            raise QuotaExceeded(f"quota max_limits.{name} is {ceiling:g}: the sandbox asks for {wanted:g}")
        if bounded[name] is None or bounded[name] > ceiling:
            bounded[name] = ceiling
    return Limits(**bounded)

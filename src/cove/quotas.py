"""What a tenant may use: plain data shared by the server's settings, the services and the wire.

Each API key but the admin's carries its quotas (the server's defaults for new keys, unless the key was made with
others). ``None`` is no bound. A request past one is refused with 429 ``quota_exceeded``, naming the quota.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cove.runtime.spec import Limits


@dataclass(frozen=True)
class Quotas:
    running_sandboxes: int | None = None
    running_memory_mb: int | None = None  # the memory limits of its running sandboxes, added up
    agent_sessions: int | None = None  # sessions that have not ended
    checkpoint_mb: int | None = None  # what its checkpoints add to the disk
    max_limits: Limits = field(default_factory=Limits)  # the largest limits one sandbox may have

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Quotas:
        known = {f.name for f in fields(cls)} - {"max_limits"}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            max_limits=Limits(**(data.get("max_limits") or {})),
        )

    def updated(self, changes: dict[str, Any]) -> Quotas:
        """These quotas with ``changes`` (part of their JSON: what it names is replaced, a null removes a bound,
        and ``max_limits`` is changed limit by limit)."""
        data = self.to_json()
        limits = {**data["max_limits"], **(changes.get("max_limits") or {})}
        return Quotas.from_json({**data, **changes, "max_limits": limits})


# What a new key gets unless the server or the key's creator says otherwise: room for a few agents at the server's
# default limits each, never a share that starves the others on a machine of a few dozen GiB.
DEFAULT_QUOTAS = Quotas(
    running_sandboxes=10,
    running_memory_mb=20 * 1024,
    agent_sessions=10,
    checkpoint_mb=10 * 1024,
    max_limits=Limits(memory_mb=8 * 1024, pids=4096, disk_mb=50 * 1024, shm_mb=1024),
)

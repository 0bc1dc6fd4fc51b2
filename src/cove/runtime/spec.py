"""What a sandbox is asked to be: plain data shared by the drivers and the services."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Network = Literal["none", "host"]


@dataclass(frozen=True)
class Limits:
    memory_mb: int | None = None
    cpus: float | None = None
    pids: int | None = None
    disk_mb: int | None = None
    shm_mb: int | None = None

    def over(self, defaults: Limits) -> Limits:
        """These limits, with ``defaults`` for every one not set."""
        return Limits(**{k: v if v is not None else getattr(defaults, k) for k, v in asdict(self).items()})


@dataclass(frozen=True)
class SandboxSpec:
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/workspace"
    network: Network = "none"
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxSpec:
        return cls(
            env=dict(data.get("env") or {}),
            cwd=data.get("cwd") or "/workspace",
            network=data.get("network") or "none",
            limits=Limits(**(data.get("limits") or {})),
        )

"""What a sandbox is asked to be: plain data shared by the drivers and the services."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cove.runtime.netpolicy import NetworkPolicy


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
    network: NetworkPolicy | None = None  # None: the server's default (filled in by the sandbox service)
    limits: Limits = field(default_factory=Limits)

    @property
    def network_mode(self) -> str:
        return self.network.mode if self.network is not None else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "cwd": self.cwd,
            "network": self.network.to_json() if self.network is not None else None,
            "limits": asdict(self.limits),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxSpec:
        return cls(
            env=dict(data.get("env") or {}),
            cwd=data.get("cwd") or "/workspace",
            network=NetworkPolicy.parse(data.get("network") or "none"),
            limits=Limits(**(data.get("limits") or {})),
        )

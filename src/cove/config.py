"""Where Cove keeps its state and how to reach a server: the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cove.runtime.spec import Limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7420
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
ADMIN_KEY_FILE = "admin_key"
DEFAULT_POOL_SIZE = 2
DEFAULT_NETWORK = "egress"
# What a sandbox gets when it asks for no limit: enough for an agent that installs packages and runs builds and
# tests, never the whole host. Each is a server option and an environment variable (``LIMIT_SETTINGS``).
DEFAULT_LIMITS = Limits(memory_mb=2048, pids=1024, disk_mb=10 * 1024, shm_mb=256)
# Limit field -> the environment variable that sets its server default.
LIMIT_SETTINGS = {
    "memory_mb": "COVE_DEFAULT_MEMORY_MB",
    "cpus": "COVE_DEFAULT_CPUS",
    "pids": "COVE_DEFAULT_PIDS",
    "disk_mb": "COVE_DEFAULT_DISK_MB",
    "shm_mb": "COVE_DEFAULT_SHM_MB",
}


def cove_home() -> Path:
    return Path(os.environ.get("COVE_HOME") or Path.home() / ".cove")


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``cove serve`` needs; tests build their own to run isolated servers side by side."""

    home: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    reaper_interval: float = 1.0
    # Sandboxes kept started ahead of time for creates that can use them (``services.pool``); 0 disables.
    pool_size: int = DEFAULT_POOL_SIZE
    # Applied to every limit a create leaves out; a default of 0 (from an option or the environment) means none.
    default_limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    # The network of a sandbox that asks for none; "host" is refused unless the operator allows it.
    default_network: str = DEFAULT_NETWORK
    allow_host_network: bool = False
    # The sandboxes' subnet; None: a slot of its own on this host (``runtime.network_slot``).
    network_subnet: str | None = None
    # Where sandboxes' DNS lookups go (host, port); empty: the host's own resolvers.
    dns_upstreams: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_env(
        cls,
        *,
        host: str | None = None,
        port: int | None = None,
        limits: dict[str, float | None] | None = None,
        default_network: str | None = None,
        allow_host_network: bool = False,
    ) -> ServerSettings:
        """The environment's settings, under the options given (``limits``: limit field -> value; None leaves
        the field to ``COVE_DEFAULT_*`` or the built-in default)."""
        return cls(
            home=cove_home(),
            host=host or os.environ.get("COVE_HOST", DEFAULT_HOST),
            port=port if port is not None else int(os.environ.get("COVE_PORT", DEFAULT_PORT)),
            pool_size=int(os.environ.get("COVE_POOL_SIZE") or DEFAULT_POOL_SIZE),
            default_limits=default_limits(limits or {}),
            default_network=default_network or os.environ.get("COVE_DEFAULT_NETWORK") or DEFAULT_NETWORK,
            allow_host_network=allow_host_network or os.environ.get("COVE_ALLOW_HOST_NETWORK", "") in ("1", "true"),
            network_subnet=os.environ.get("COVE_NETWORK_SUBNET") or None,
            dns_upstreams=_upstreams(os.environ.get("COVE_DNS_UPSTREAM", "")),
        )

    @property
    def database_path(self) -> Path:
        return self.home / "cove.db"

    @property
    def sandboxes_dir(self) -> Path:
        return self.home / "sandboxes"

    @property
    def model_dir(self) -> Path:
        """Holds the model proxy's socket; bound read-only into every sandbox."""
        return self.home / "model"

    @property
    def layers_dir(self) -> Path:
        """Sealed checkpoint layers, shared by every sandbox that stands on them."""
        return self.home / "layers"

    @property
    def views_dir(self) -> Path:
        """Per-sandbox idmapped views of the layers (see ``runtime.storage``)."""
        return self.home / "views"

    @property
    def scratch_dir(self) -> Path:
        return self.home / "scratch"

    @property
    def turns_dir(self) -> Path:
        """What each sandbox's agent turns changed (``services.turns``), outside the sandboxes' own directories."""
        return self.home / "turns"

    @property
    def admin_key_path(self) -> Path:
        return self.home / ADMIN_KEY_FILE


def default_limits(options: dict[str, float | None]) -> Limits:
    """The server's default limits: each from its option, else its environment variable, else ``DEFAULT_LIMITS``;
    0 turns a default off (except /dev/shm, which always has a size: a tmpfs without one may take half the RAM)."""

    def chosen(name: str) -> float | None:
        value = options.get(name)
        variable = LIMIT_SETTINGS[name]
        if value is None and os.environ.get(variable):
            value = float(os.environ[variable])
        if value is None:
            value = getattr(DEFAULT_LIMITS, name)
        if name == "shm_mb" and not value:
            raise ValueError(f"the default /dev/shm size must be at least 1 MiB ({variable})")
        return value or None

    def whole(name: str) -> int | None:
        value = chosen(name)
        return int(value) if value is not None else None

    return Limits(
        memory_mb=whole("memory_mb"),
        cpus=chosen("cpus"),
        pids=whole("pids"),
        disk_mb=whole("disk_mb"),
        shm_mb=whole("shm_mb"),
    )


def _upstreams(text: str) -> tuple[tuple[str, int], ...]:
    """``"10.0.0.2, 10.0.0.3:5353"`` as (host, port) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        address, _, port = item.partition(":")
        pairs.append((address, int(port or 53)))
    return tuple(pairs)

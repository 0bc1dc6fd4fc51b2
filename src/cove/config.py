"""Where Cove keeps its state and how to reach a server: the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cove.quotas import DEFAULT_QUOTAS, Quotas
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
# Quota -> the environment variable that sets its default for new keys (``max_<limit>``: ``max_limits``' limits).
QUOTA_SETTINGS = {
    "running_sandboxes": "COVE_QUOTA_RUNNING_SANDBOXES",
    "running_memory_mb": "COVE_QUOTA_RUNNING_MEMORY_MB",
    "agent_sessions": "COVE_QUOTA_AGENT_SESSIONS",
    "checkpoint_mb": "COVE_QUOTA_CHECKPOINT_MB",
    **{f"max_{name}": f"COVE_QUOTA_MAX_{name.upper()}" for name in LIMIT_SETTINGS},
}
# Failed authentications a client address may make in a minute before it is refused (429) for the rest of it.
DEFAULT_AUTH_FAILURES = 30
# Days the audit trail keeps what happened.
DEFAULT_AUDIT_DAYS = 90


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
    # Where clients reach this server (``COVE_URL``), for the preview URLs it gives out; None: the address each
    # request came to.
    url: str | None = None
    # With a domain whose every name leads to this server (``*.preview.example.com``, or ``localhost:7420``),
    # previews are also served at ``http://{port}-{id}.{domain}/``, and that is the URL given out.
    preview_domain: str | None = None
    # What a key made without quotas of its own gets.
    default_quotas: Quotas = field(default_factory=lambda: DEFAULT_QUOTAS)
    auth_failures_per_minute: int = DEFAULT_AUTH_FAILURES
    audit_days: float = DEFAULT_AUDIT_DAYS
    # A log line per HTTP request. Off by default: the audit trail records every call that changes something, and
    # the line cost each request about a tenth of a millisecond on the event loop (benchmarks/RESULTS.md).
    access_log: bool = False

    @classmethod
    def from_env(
        cls,
        *,
        host: str | None = None,
        port: int | None = None,
        limits: dict[str, float | None] | None = None,
        quotas: dict[str, float | None] | None = None,
        default_network: str | None = None,
        allow_host_network: bool = False,
        preview_domain: str | None = None,
        access_log: bool = False,
    ) -> ServerSettings:
        """The environment's settings, under the options given (``limits``: limit field -> value; None leaves
        the field to ``COVE_DEFAULT_*`` or the built-in default; ``quotas`` likewise, by ``QUOTA_SETTINGS``'
        names, to ``COVE_QUOTA_*``)."""
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
            url=os.environ.get("COVE_URL") or None,
            preview_domain=preview_domain or os.environ.get("COVE_PREVIEW_DOMAIN") or None,
            default_quotas=default_quotas(quotas or {}),
            auth_failures_per_minute=int(os.environ.get("COVE_AUTH_FAILURES_PER_MINUTE") or DEFAULT_AUTH_FAILURES),
            audit_days=float(os.environ.get("COVE_AUDIT_DAYS") or DEFAULT_AUDIT_DAYS),
            access_log=access_log or os.environ.get("COVE_ACCESS_LOG", "") in ("1", "true"),
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

    @property
    def token_secret_path(self) -> Path:
        """What scoped tokens are signed with (mode 0600): deleting it voids every token."""
        return self.home / "token_secret"


def _chosen(options: dict[str, float | None], name: str, variable: str, builtin: float | None) -> float | None:
    """A server default: its option, else its environment variable, else ``builtin``; 0 means none."""
    value = options.get(name)
    if value is None and os.environ.get(variable):
        value = float(os.environ[variable])
    if value is None:
        value = builtin
    return value or None


def _whole(value: float | None) -> int | None:
    return int(value) if value is not None else None


def default_limits(options: dict[str, float | None]) -> Limits:
    """The server's default limits: each from its option, else its environment variable, else ``DEFAULT_LIMITS``;
    0 turns a default off (except /dev/shm, which always has a size: a tmpfs without one may take half the RAM)."""

    def chosen(name: str) -> float | None:
        value = _chosen(options, name, LIMIT_SETTINGS[name], getattr(DEFAULT_LIMITS, name))
        if name == "shm_mb" and not value:
            raise ValueError(f"the default /dev/shm size must be at least 1 MiB ({LIMIT_SETTINGS[name]})")
        return value

    return Limits(
        memory_mb=_whole(chosen("memory_mb")),
        cpus=chosen("cpus"),
        pids=_whole(chosen("pids")),
        disk_mb=_whole(chosen("disk_mb")),
        shm_mb=_whole(chosen("shm_mb")),
    )


def default_quotas(options: dict[str, float | None]) -> Quotas:
    """The quotas of a key made without its own: each from its option, else its environment variable (both named
    in ``QUOTA_SETTINGS``), else ``DEFAULT_QUOTAS``; 0 turns a quota off."""
    builtin = {**DEFAULT_QUOTAS.to_json(), **{f"max_{k}": v for k, v in DEFAULT_QUOTAS.max_limits.__dict__.items()}}
    values = {name: _chosen(options, name, variable, builtin[name]) for name, variable in QUOTA_SETTINGS.items()}
    return Quotas(
        running_sandboxes=_whole(values["running_sandboxes"]),
        running_memory_mb=_whole(values["running_memory_mb"]),
        agent_sessions=_whole(values["agent_sessions"]),
        checkpoint_mb=_whole(values["checkpoint_mb"]),
        max_limits=Limits(
            memory_mb=_whole(values["max_memory_mb"]),
            cpus=values["max_cpus"],
            pids=_whole(values["max_pids"]),
            disk_mb=_whole(values["max_disk_mb"]),
            shm_mb=_whole(values["max_shm_mb"]),
        ),
    )


def _upstreams(text: str) -> tuple[tuple[str, int], ...]:
    """``"10.0.0.2, 10.0.0.3:5353"`` as (host, port) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        address, _, port = item.partition(":")
        pairs.append((address, int(port or 53)))
    return tuple(pairs)

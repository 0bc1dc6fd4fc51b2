"""Where Cove keeps its state and how to reach a server: the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7420
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
ADMIN_KEY_FILE = "admin_key"
DEFAULT_POOL_SIZE = 2


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

    @classmethod
    def from_env(cls, *, host: str | None = None, port: int | None = None) -> ServerSettings:
        return cls(
            home=cove_home(),
            host=host or os.environ.get("COVE_HOST", DEFAULT_HOST),
            port=port if port is not None else int(os.environ.get("COVE_PORT", DEFAULT_PORT)),
            pool_size=int(os.environ.get("COVE_POOL_SIZE") or DEFAULT_POOL_SIZE),
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
    def admin_key_path(self) -> Path:
        return self.home / ADMIN_KEY_FILE

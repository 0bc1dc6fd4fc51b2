"""Sealed layers: immutable directory trees under ``$COVE_HOME/layers``, stacked by overlayfs under sandboxes.

A checkpoint is an ordered chain of layer ids (bottom first). Every layer's files are owned on disk by
``LAYER_UID``, a uid no sandbox runs as; each sandbox sees them through an idmapped mount as its own, so one
layer serves any number of forks, each with its own uid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from cove.runtime.mounts import detach, mount_overlay

LAYER_UID = 199_999
BASE = "base"
# The top-level directories of a sandbox's writable state, as they sit in every layer and upper.
STATE_DIRS = ("workspace", "home")


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the store and its empty base layer, the bottom of every sandbox's stack."""
        base = self.path(BASE)
        for name in STATE_DIRS:
            (base / name).mkdir(parents=True, exist_ok=True)
            os.chown(base / name, LAYER_UID, LAYER_UID)
            (base / name).chmod(0o755)

    def path(self, layer_id: str) -> Path:
        return self.root / layer_id

    def allocate(self) -> str:
        """A new, empty layer directory; short ids keep overlay mount options short."""
        layer_id = secrets.token_hex(5)
        self.path(layer_id).mkdir(parents=True)
        return layer_id

    def on_disk(self) -> set[str]:
        with contextlib.suppress(FileNotFoundError):
            # Dot names are the store's own records and probes, never layers (whose ids are hex).
            return {entry.name for entry in os.scandir(self.root) if entry.name != BASE and entry.name[0] != "."}
        return set()

    def remove(self, layer_id: str) -> None:
        if layer_id != BASE:
            shutil.rmtree(self.path(layer_id), ignore_errors=True)

    def size(self, layer_id: str) -> int:
        return tree_size(self.path(layer_id))

    def squash(self, chain: list[str], layer_id: str, scratch: Path) -> None:
        """Fill ``layer_id`` with the merged content of ``chain``: bounds the depth of long checkpoint chains.

        The chain is mounted read-only (overlayfs resolves whiteouts and opaque directories), then copied; the
        copy costs what the whole state weighs, which is why it happens only every ``MAX_DEPTH`` checkpoints.
        """
        scratch.mkdir(parents=True, exist_ok=True)
        view = Path(tempfile.mkdtemp(prefix="squash-", dir=scratch))
        lowers = [self.path(layer) for layer in reversed(chain)] + [self.path(BASE)]
        mount_overlay(lowers, None, None, view)
        try:
            subprocess.run(["cp", "-a", f"{view}/.", str(self.path(layer_id))], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            self.remove(layer_id)
            raise
        finally:
            detach(view)
            view.rmdir()


def tree_size(root: Path) -> int:
    """Bytes a directory tree holds on disk, not following mount points."""
    total = 0
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(directory, d))]
        for name in [*names, *dirs]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total

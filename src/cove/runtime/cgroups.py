"""Resource limits through cgroups: v2 where the host delegates controllers, v1 where that is what it has.

Each backend reports which limits it really put in place; the sandbox's info shows exactly that, so Cove never
claims a limit the kernel is not enforcing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Protocol

from cove.runtime.spec import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


class Cgroups(Protocol):
    name: str

    def create(self, sandbox_id: str, limits: Limits) -> tuple[list[Path], dict[str, str]]:
        """Make the sandbox's groups; return the ``cgroup.procs`` files to join and the limits enforced."""
        ...

    def oom_kills(self, sandbox_id: str) -> int: ...

    def kill_all(self, sandbox_id: str) -> None: ...

    def freeze(self, sandbox_id: str) -> bool:
        """Stop every process of the sandbox where it stands (checkpoints); False when this host cannot."""
        ...

    def thaw(self, sandbox_id: str) -> None: ...

    def pids(self, sandbox_id: str) -> list[int] | None:
        """Every process of the sandbox; None when this host cannot tell."""
        ...

    def remove(self, sandbox_id: str) -> bool:
        """Remove the sandbox's groups; True once none is left (a group with live processes stays)."""
        ...

    def existing(self) -> set[str]:
        """The sandboxes that have groups here (for the clean-up of what a crash left behind)."""
        ...


def _children(directory: Path) -> set[str]:
    try:
        return {entry.name for entry in directory.iterdir() if entry.is_dir()}
    except OSError:
        return set()


def _rmdir(group: Path) -> bool:
    try:
        group.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


FREEZE_TIMEOUT = 10.0


def _wait_for(check: Path, expected: str) -> bool:
    """Freezing is asynchronous: poll until the kernel reports every task stopped."""
    deadline = time.monotonic() + FREEZE_TIMEOUT
    delay = 0.0002
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if expected in check.read_text().split("\n"):
                return True
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return False


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def _oom_kill_count(path: Path) -> int:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return 0


def _read_pids(procs: Path) -> list[int] | None:
    try:
        return [int(pid) for pid in procs.read_text().split()]
    except OSError:
        return None


def _kill_procs(procs: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in procs.read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


class CgroupV2:
    name = "cgroup-v2"

    def __init__(self, root: Path) -> None:
        self._base = root / "cove"

    def _dir(self, sandbox_id: str) -> Path:
        return self._base / sandbox_id

    def create(self, sandbox_id: str, limits: Limits) -> tuple[list[Path], dict[str, str]]:
        self._base.mkdir(exist_ok=True)
        _write(self._base.parent / "cgroup.subtree_control", "+memory +cpu +pids")
        _write(self._base / "cgroup.subtree_control", "+memory +cpu +pids")
        group = self._dir(sandbox_id)
        group.mkdir(exist_ok=True)
        enforced: dict[str, str] = {}
        if limits.memory_mb and _write(group / "memory.max", str(limits.memory_mb * 1024 * 1024)):
            _write(group / "memory.swap.max", "0")
            enforced["memory_mb"] = self.name
        if limits.cpus and _write(group / "cpu.max", f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}"):
            enforced["cpus"] = self.name
        if limits.pids and _write(group / "pids.max", str(limits.pids)):
            enforced["pids"] = self.name
        return [group / "cgroup.procs"], enforced

    def oom_kills(self, sandbox_id: str) -> int:
        return _oom_kill_count(self._dir(sandbox_id) / "memory.events")

    def kill_all(self, sandbox_id: str) -> None:
        if not _write(self._dir(sandbox_id) / "cgroup.kill", "1"):
            _kill_procs(self._dir(sandbox_id) / "cgroup.procs")

    def remove(self, sandbox_id: str) -> bool:
        return _rmdir(self._dir(sandbox_id))

    def existing(self) -> set[str]:
        return _children(self._base)

    def freeze(self, sandbox_id: str) -> bool:
        group = self._dir(sandbox_id)
        if not _write(group / "cgroup.freeze", "1"):
            return False
        if _wait_for(group / "cgroup.events", "frozen 1"):
            return True
        self.thaw(sandbox_id)
        return False

    def thaw(self, sandbox_id: str) -> None:
        _write(self._dir(sandbox_id) / "cgroup.freeze", "0")

    def pids(self, sandbox_id: str) -> list[int] | None:
        return _read_pids(self._dir(sandbox_id) / "cgroup.procs")


class CgroupV1:
    name = "cgroup-v1"
    CONTROLLERS = ("memory", "cpu", "pids")
    # Joined when the host mounts it; it enforces no limit, it only lets checkpoints freeze the sandbox.
    FREEZER = "freezer"

    def __init__(self, root: Path) -> None:
        self._root = root

    def _dir(self, controller: str, sandbox_id: str) -> Path:
        return self._root / controller / "cove" / sandbox_id

    def create(self, sandbox_id: str, limits: Limits) -> tuple[list[Path], dict[str, str]]:
        procs: list[Path] = []
        for controller in self._controllers():
            group = self._dir(controller, sandbox_id)
            with contextlib.suppress(OSError):
                group.mkdir(parents=True, exist_ok=True)
                procs.append(group / "cgroup.procs")
        enforced: dict[str, str] = {}
        memory = self._dir("memory", sandbox_id)
        if limits.memory_mb:
            # memsw (memory + swap) may never be under the memory limit: when a claim raises a pooled sandbox's
            # limit it must go first, when it lowers it, second. Writing it before and after covers both.
            value = str(limits.memory_mb * 1024 * 1024)
            _write(memory / "memory.memsw.limit_in_bytes", value)
            if _write(memory / "memory.limit_in_bytes", value):
                _write(memory / "memory.memsw.limit_in_bytes", value)
                enforced["memory_mb"] = self.name
        cpu = self._dir("cpu", sandbox_id)
        quota = str(int((limits.cpus or 0) * CPU_PERIOD_US))
        if (
            limits.cpus
            and _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            and _write(cpu / "cpu.cfs_quota_us", quota)
        ):
            enforced["cpus"] = self.name
        if limits.pids and _write(self._dir("pids", sandbox_id) / "pids.max", str(limits.pids)):
            enforced["pids"] = self.name
        return procs, enforced

    def oom_kills(self, sandbox_id: str) -> int:
        return _oom_kill_count(self._dir("memory", sandbox_id) / "memory.oom_control")

    def kill_all(self, sandbox_id: str) -> None:
        _kill_procs(self._dir("pids", sandbox_id) / "cgroup.procs")

    def remove(self, sandbox_id: str) -> bool:
        results = [_rmdir(self._dir(controller, sandbox_id)) for controller in self._controllers()]
        return all(results)

    def existing(self) -> set[str]:
        return set().union(*(_children(self._root / controller / "cove") for controller in self._controllers()))

    def _controllers(self) -> tuple[str, ...]:
        if (self._root / self.FREEZER).is_dir():
            return (*self.CONTROLLERS, self.FREEZER)
        return self.CONTROLLERS

    def freeze(self, sandbox_id: str) -> bool:
        state = self._dir(self.FREEZER, sandbox_id) / "freezer.state"
        if not _write(state, "FROZEN"):
            return False
        if _wait_for(state, "FROZEN"):
            return True
        self.thaw(sandbox_id)
        return False

    def thaw(self, sandbox_id: str) -> None:
        _write(self._dir(self.FREEZER, sandbox_id) / "freezer.state", "THAWED")

    def pids(self, sandbox_id: str) -> list[int] | None:
        return _read_pids(self._dir("pids", sandbox_id) / "cgroup.procs")


class NoCgroups:
    """No writable cgroup hierarchy (an unprivileged server): limits fall back to rlimits alone."""

    name = "none"

    def create(self, sandbox_id: str, limits: Limits) -> tuple[list[Path], dict[str, str]]:
        return [], {}

    def oom_kills(self, sandbox_id: str) -> int:
        return 0

    def kill_all(self, sandbox_id: str) -> None:
        return None

    def remove(self, sandbox_id: str) -> bool:
        return True

    def existing(self) -> set[str]:
        return set()

    def freeze(self, sandbox_id: str) -> bool:
        return False

    def thaw(self, sandbox_id: str) -> None:
        return None

    def pids(self, sandbox_id: str) -> list[int] | None:
        return None


def detect(root: Path = CGROUP_ROOT) -> Cgroups:
    """Pick the backend by probing what this host really offers and lets us write."""
    controllers = root / "cgroup.controllers"
    if controllers.exists():
        available = set(controllers.read_text().split())
        if {"memory", "pids"} <= available and os.access(root, os.W_OK):
            return CgroupV2(root)
    if all((root / c).is_dir() for c in CgroupV1.CONTROLLERS) and os.access(root / "memory", os.W_OK):
        return CgroupV1(root)
    return NoCgroups()

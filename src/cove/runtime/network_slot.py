"""Which slice of the host's network a server's sandboxes live in: their subnet, its nftables table and the
prefix of their host interfaces.

Those are host-wide names, and a host may run more than one Cove server (a test suite runs several at once): two
servers sharing a table would each clear the other's sandboxes as leftovers at start-up, and two forwarders would
fight over one gateway address. So each server holds one slot of ``SPACE`` — a /20, with ``cove_<slot>`` as table
and ``cv<slot>`` as prefix — under an exclusive lock (``flock``) on a file of its own in ``LOCK_DIR`` for as long
as it runs; the kernel drops the lock with the process, however it ends. The slot is kept in the server's home, so
a restarted server takes the same one back: its sandboxes outlived it, with their addresses. The lock file names
the home that took the slot, and no other home takes it while that home still has sandboxes: a server that died
leaves running sandboxes whose veths and rules another server's start-up would clear.

Slots no server holds and whose home has no sandboxes left are ``abandoned``: a starting server removes their
kernel state (a suite's short-lived servers leave one table each, and every table makes each nftables
transaction of every server on the host slower).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

SPACE = ipaddress.IPv4Network("10.200.0.0/13")
SLOT_PREFIX = 20
SLOTS = 2 ** (SLOT_PREFIX - SPACE.prefixlen)
LOCK_DIR = Path("/run/cove-networks")
RECORD = "network.json"
RETRIES, RETRY_S = 50, 0.1


class SlotUnavailable(Exception):
    """No slot could be held (all taken, or this home's is held by a server still running)."""


@dataclass(frozen=True)
class NetworkSlot:
    subnet: str
    table: str
    prefix: str
    lock: int  # the descriptor that holds the slot; closed when the server goes

    def release(self) -> None:
        os.close(self.lock)


def _hold(name: str, home: Path) -> int | None:
    """The lock of ``name``, held for ``home``; None when a live process holds it, or when it belongs to another
    home that still has sandboxes."""
    LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(LOCK_DIR / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    owner = os.read(fd, 4096).decode(errors="replace")
    mine = str(home.resolve())
    if owner and owner != mine and not _abandoned(Path(owner)):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, mine.encode(), 0)
    return fd


def _abandoned(home: Path) -> bool:
    """Whether a slot whose lock file names ``home`` (empty: none) serves no sandbox."""
    return not home.parts or not _has_sandboxes(home)


def _has_sandboxes(home: Path) -> bool:
    try:
        return any(entry.name.startswith("sbx_") for entry in os.scandir(home / "sandboxes"))
    except OSError:
        return False


def _slot(index: int, lock: int) -> NetworkSlot:
    subnet = list(SPACE.subnets(new_prefix=SLOT_PREFIX))[index]
    return NetworkSlot(str(subnet), f"cove_{index:02x}", f"cv{index:02x}", lock)


def abandoned(index: int, mine: NetworkSlot) -> NetworkSlot | None:
    """Slot ``index``, held, if it had a server and is free now, with no sandbox left in its home (else None).
    Its lock is held (its owner kept) until its ``release``: callers take one at a time, as briefly as they can,
    since a server restarting takes its recorded slot back."""
    path = LOCK_DIR / f"slot-{index}.lock"
    if f"cove_{index:02x}" == mine.table or not path.exists():
        return None
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if _abandoned(Path(os.read(fd, 4096).decode(errors="replace"))):
        return _slot(index, fd)
    os.close(fd)
    return None


def claim(home: Path, configured: str | None = None) -> NetworkSlot:
    """This server's slot: ``configured`` (an operator's subnet: table ``cove``, prefix ``cv``), else the one its
    home recorded, else the first free one counting from where the home's path points."""
    if configured:
        lock = _hold("subnet-" + configured.replace("/", "_"), home)
        if lock is None:
            raise SlotUnavailable(f"subnet {configured} is held by another Cove server on this host")
        return NetworkSlot(configured, "cove", "cv", lock)
    record = home / RECORD
    try:
        recorded: int | None = int(json.loads(record.read_text())["slot"])
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded is not None:
        lock = _hold(f"slot-{recorded}", home)
        for _ in range(RETRIES):
            if lock is not None:
                break
            time.sleep(RETRY_S)  # another server's clean-up may hold it for a moment (see ``abandoned``)
            lock = _hold(f"slot-{recorded}", home)
        if lock is None:
            raise SlotUnavailable(f"network slot {recorded} of {home} is held by another server or home")
        return _slot(recorded, lock)
    start = zlib.crc32(os.fsencode(home.resolve())) % SLOTS
    for step in range(SLOTS):
        index = (start + step) % SLOTS
        lock = _hold(f"slot-{index}", home)
        if lock is not None:
            record.write_text(json.dumps({"slot": index, "subnet": str(_slot(index, lock).subnet)}) + "\n")
            return _slot(index, lock)
    raise SlotUnavailable(f"all {SLOTS} network slots of {SPACE} are held by Cove servers on this host")

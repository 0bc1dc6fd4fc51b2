"""What a sandbox's turns changed in ``/workspace``: the state of each changed file at each seal, kept on the host.

A **seal** is a numbered instant: the server takes one when a turn may begin (the agent's runner waits for it) and
one when a turn ends, so a turn's changes are the paths whose state differs between its two seals, and its diff
compares their states at those seals. Seals cost what changed since the last one, not what the workspace holds:

- **What may have changed** comes from ``WorkspaceWatch`` (inotify on every directory, drained at the seal): a
  turn that touched nothing costs a read of an empty queue. What the watch cannot follow (a directory moved, an
  overflow, the first seal after a server restart) is found by a walk that compares every entry's inode and ctime
  with what the last seals saw (the ctime is the kernel's: a sandbox cannot set it back).
- **The state** of each such path is read through ``safe_open`` beneath the sandbox's workspace: a regular file of
  the sandbox's uid with one link (its content, up to ``MAX_FILE_BYTES``, kept by its SHA-256: ``turn_pack``), a
  symbolic link (its target, never followed), or something the server does not read (a FIFO, a device, a file
  with several links: named, not read). Content beyond the file bound, the seal's bound or the store's space is
  not kept, and such a file is compared by size and time only.
- **The state before** a path's first change is the base's (``storage.WorkspaceBase``): the overlay's immutable
  lower layers or a btrfs snapshot, read when the change is first seen (they never change), plus a copy of what
  an overlay's upper held when the store began (it can change: copied then, once).

Everything is kept in the store's directory (outside the sandbox's, so it is not the sandbox's to reach) and
survives a server restart: ``versions.jsonl`` (each path's state at each seal that changed it, appended),
``listing.json`` (every entry at the last full walk), ``seal`` (the last seal's number) and the turn records. A
store lives as long as its sandbox's files: a restore or a kill discards it.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cove.runtime import safe_open
from cove.runtime.safe_open import UnsafePath
from cove.runtime.storage import Located, WorkspaceBase
from cove.runtime.turn_pack import Pack
from cove.runtime.workspace_watch import Seen, Unfollowable, WorkspaceWatch, skipped, walk

MAX_FILE_BYTES = 1024 * 1024  # larger files are compared by size and time, never read
MAX_KEPT_BYTES = 256 * 1024 * 1024  # content one sandbox's store may hold
MAX_READS_PER_SEAL = 5_000  # files read at one seal (a turn that writes 100,000 files is listed, not read)
MAX_READ_BYTES_PER_SEAL = 64 * 1024 * 1024
MAX_RECORD_BYTES = 64 * 1024 * 1024  # the turns' records a sandbox keeps; past it, the oldest go
COMPACT_FROM = 200_000  # lines in versions.jsonl before ``compact`` looks at it
VERSIONS = "versions.jsonl"
LISTING = "listing.json"
SEAL = "seal"
RECORDS = "records"
# What a path held: a file or link whose content is kept, or one compared by size and time only.
FILE, LINK, LARGE, UNKEPT, UNREADABLE = "file", "link", "large", "unkept", "unreadable"


@dataclass(frozen=True, slots=True)
class State:
    """A path's state at a seal (None, where a State is expected, is "nothing there")."""

    kind: str
    digest: str | None  # SHA-256 of the content (a file) or of the target (a link), when kept
    size: int
    mtime_ns: int
    entry: str  # the entry as a walk sees it (``Seen.kind``), its inode and ctime
    inode: int
    ctime_ns: int

    def same(self, other: State | None) -> bool:
        """Whether ``other`` holds what this holds: the same content when both were kept, else the same kind,
        size and modification time."""
        if other is None or other.kind != self.kind:
            return False
        if self.digest is not None and other.digest is not None:
            return self.digest == other.digest
        return (self.size, self.mtime_ns) == (other.size, other.mtime_ns)

    def seen(self) -> Seen:
        return Seen(self.entry, self.inode, self.ctime_ns)

    def to_list(self) -> list[object]:
        return [self.kind, self.digest, self.size, self.mtime_ns, self.entry, self.inode, self.ctime_ns]


def same(a: State | None, b: State | None) -> bool:
    return (a is None and b is None) or (a is not None and a.same(b))


# What ``_read`` finds where a directory is: no file there, and nothing to record.
DIRECTORY = State("directory", None, 0, 0, "d", 0, 0)


@dataclass
class _Budget:
    reads: int = MAX_READS_PER_SEAL
    bytes: int = MAX_READ_BYTES_PER_SEAL


@dataclass
class _Index:
    """Each path's states, by seal (seal 0 is the base), and the paths each seal changed."""

    versions: dict[str, list[tuple[int, State | None]]] = field(default_factory=dict)
    by_seal: dict[int, list[str]] = field(default_factory=dict)

    def add(self, seal: int, path: str, state: State | None) -> None:
        """Record ``path``'s state at ``seal`` (a base state, seal 0, may be recorded after later ones)."""
        bisect.insort(self.versions.setdefault(path, []), (seal, state), key=lambda version: version[0])
        self.by_seal.setdefault(seal, []).append(path)

    def at(self, path: str, seal: int) -> tuple[bool, State | None]:
        """(known, state) of ``path`` at ``seal``: known is false when no seal up to it recorded the path."""
        found: tuple[bool, State | None] = (False, None)
        for recorded, state in self.versions.get(path, ()):
            if recorded > seal:
                break
            found = (True, state)
        return found

    def in_base(self, path: str) -> bool:
        return bool(self.versions.get(path)) and self.versions[path][0][0] == 0


class TurnStore:
    """One sandbox's kept states. ``live`` is its workspace as the sandbox sees it (``merged/workspace``), read
    as ``uid``; blocking calls, for a worker thread (one at a time per store)."""

    def __init__(self, directory: Path, live: Path, uid: int, base: WorkspaceBase) -> None:
        self._directory = directory
        self._uid = uid
        self._base = base
        with safe_open.opened(safe_open.open_root(live.parent)) as parent:
            self._live = safe_open.open_directory(parent, live.name, uid)
        self._watch = WorkspaceWatch(self._live, uid)
        self._index = _Index()
        self._expected: dict[str, Seen] = {}  # every non-directory entry, as the last seal left the workspace
        self._pack: Pack | None = None  # opened by begin or load
        self._unsaved: list[tuple[int, str]] = []  # versions recorded, not yet in versions.jsonl
        self._logged = 0  # lines in versions.jsonl
        # Each turn's record kept, oldest first, with its size: read from the disk once, then kept up to date.
        self._records: collections.OrderedDict[Path, int] | None = None
        self._records_bytes = 0
        self.last_seal = 0

    # -- opening -----------------------------------------------------------------------------------------------

    def begin(self) -> None:
        """A new store: seal 0 is the base. The watch starts first, so whatever changes while the base's volatile
        part is copied is seen at the next seal."""
        shutil.rmtree(self._directory / RECORDS, ignore_errors=True)  # what a begin cut short may have left
        self._records = None
        (self._directory / RECORDS).mkdir(parents=True)
        for name in (VERSIONS, LISTING):
            (self._directory / name).unlink(missing_ok=True)
        Pack.clear(self._directory)
        self._pack = Pack(self._directory, MAX_KEPT_BYTES)
        self._expected = self._restart_watch()
        budget = _Budget(reads=2**62, bytes=MAX_KEPT_BYTES)  # the base's copy is bounded by the store's space
        for path, where in self._base.kept_now():
            state = self._read(where, budget) if where is not None else None
            self._record(0, path, None if state is DIRECTORY else state)
        self._save_versions()
        self._save_listing()
        self._save_seal(0)

    def load(self) -> None:
        """The store a previous server left: its states and its listing. Its watch is gone, so the next seal
        walks the workspace."""
        with contextlib.suppress(FileNotFoundError):
            for line in (self._directory / VERSIONS).read_text().splitlines():
                seal, path, state = json.loads(line)
                self._index.add(seal, path, State(*state) if state is not None else None)
                self._logged += 1
        listing = json.loads((self._directory / LISTING).read_text())
        self._expected = {path: Seen(*seen) for path, seen in listing["entries"].items()}
        for seal, paths in sorted(self._index.by_seal.items()):
            if seal > listing["seal"]:
                for path in paths:
                    self._expect(path, self._index.at(path, seal)[1])
        self.last_seal = int((self._directory / SEAL).read_text())
        self._pack = Pack(self._directory, MAX_KEPT_BYTES)

    # -- sealing -----------------------------------------------------------------------------------------------

    def pending(self) -> set[str] | None:
        """The paths inotify reported since the last seal (a non-blocking read of its queue); None when the watch
        cannot tell (the next seal walks the workspace)."""
        try:
            return self._watch.drain()
        except Unfollowable:
            return None

    def seal(self, candidates: set[str] | None = None) -> int:
        """Record what changed since the last seal — among ``candidates`` when they come from ``pending``;
        returns the new seal's number, or the last seal's when nothing was reported since (an edge where nothing
        changed is that seal: most turns' edges, and it costs no write)."""
        walked = False
        if candidates is None:
            try:
                candidates = self._watch.drain()
            except Unfollowable:
                candidates, walked = self._rewalk(), True
        if not candidates and not walked and not self._unsaved:
            return self.last_seal
        number = self.last_seal + 1
        budget = _Budget()
        for path in sorted(candidates):
            if skipped(path):
                continue
            now = self._read(Located(self._live, path, self._uid), budget)
            state = None if now is DIRECTORY else now
            if not same(self._at(path, self.last_seal, budget), state):
                self._record(number, path, state)
            self._expect(path, state)
        self._save_versions()
        if walked:
            self._save_listing(number)
        self._save_seal(number)
        return number

    def _restart_watch(self) -> dict[str, Seen]:
        """Watch every directory again; every entry the walk found. A workspace that cannot be watched is walked
        all the same, and then again at each seal."""
        try:
            return dict(self._watch.start())
        except Unfollowable:
            return dict(walk(self._live, self._uid))

    def _rewalk(self) -> set[str]:
        """Every path whose entry differs from what the last seal saw: made, removed, replaced or changed (its
        ctime moved)."""
        found = self._restart_watch()
        expected = self._expected
        return {p for p, seen in found.items() if expected.get(p) != seen} | (expected.keys() - found.keys())

    def _expect(self, path: str, state: State | None) -> None:
        if state is None:
            self._expected.pop(path, None)
        else:
            self._expected[path] = state.seen()

    def _at(self, path: str, seal: int, budget: _Budget | None = None) -> State | None:
        """The state of ``path`` at ``seal``; the base's when no seal recorded it (read then, within ``budget``,
        and recorded as seal 0's: the base never changes)."""
        known, state = self._index.at(path, seal)
        if known:
            return state
        parts = path.split("/")
        if any(self._index.in_base("/".join(parts[:depth])) for depth in range(1, len(parts))):
            return None  # beneath something the base had instead of a directory
        where = self._base.locate(path)
        found = self._read(where, budget or _Budget()) if where is not None else None
        if found is DIRECTORY:
            return None
        self._record(0, path, found)
        return found

    # -- reading what the sandbox wrote -----------------------------------------------------------------------

    def _read(self, where: Located, budget: _Budget) -> State | None:
        """The state of one entry: resolved beneath its root through no link (its last component, if a link, is
        read as one, never followed), a regular file opened and checked by ``safe_open``, read within bounds."""
        try:
            fd = safe_open.openat2(where.root, where.path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # nothing there, or only through a link: not an entry of the workspace's own
        with safe_open.opened(fd):
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                return DIRECTORY
            if stat.S_ISLNK(st.st_mode):
                target = os.fsencode(os.readlink("", dir_fd=fd))
                return self._state(LINK, self._keep(target), len(target), st, "l")
        if not stat.S_ISREG(st.st_mode):
            return self._state(UNREADABLE, None, st.st_size, st, "o")
        if st.st_size > MAX_FILE_BYTES:
            return self._state(LARGE, None, st.st_size, st)
        if budget.reads <= 0 or budget.bytes < st.st_size:
            return self._state(UNKEPT, None, st.st_size, st)
        try:
            file = safe_open.open_file(where.root, where.path, where.uid)
        except UnsafePath:
            return self._state(UNREADABLE, None, st.st_size, st)
        except OSError:
            return None
        with safe_open.opened(file):
            st = os.fstat(file)
            data = safe_open.read_at(file, 0, MAX_FILE_BYTES + 1)
        budget.reads -= 1
        budget.bytes -= len(data)
        if len(data) > MAX_FILE_BYTES:
            return self._state(LARGE, None, len(data), st)
        digest = self._keep(data)
        return self._state(FILE if digest is not None else UNKEPT, digest, len(data), st)

    @staticmethod
    def _state(kind: str, digest: str | None, size: int, st: os.stat_result, entry: str = "f") -> State:
        return State(kind, digest, size, st.st_mtime_ns, entry, st.st_ino, st.st_ctime_ns)

    def _keep(self, data: bytes) -> str | None:
        assert self._pack is not None
        return self._pack.keep(data)

    def content(self, digest: str) -> bytes:
        """A kept content (any thread may read it: contents are never rewritten)."""
        assert self._pack is not None
        return self._pack.read(digest)

    # -- what a turn changed ----------------------------------------------------------------------------------

    def changes(self, start: int, end: int) -> list[tuple[str, State | None, State | None]]:
        """(path, state at ``start``, state at ``end``) of every path whose state differs between two seals,
        sorted by path."""
        paths = {path for seal in range(start + 1, end + 1) for path in self._index.by_seal.get(seal, ())}
        found = []
        for path in sorted(paths):
            before, after = self._at(path, start), self._at(path, end)
            if not same(before, after):
                found.append((path, before, after))
        self._save_versions()
        return found

    def save_record(self, session_id: str, turn: int, record: dict[str, Any]) -> None:
        """Keep a turn's record (what its diff shows); past ``MAX_RECORD_BYTES`` for the sandbox, the oldest
        records go (their turns' diffs with them: ``turn_not_found``)."""
        directory = self._directory / RECORDS / session_id
        directory.mkdir(exist_ok=True)
        temporary = directory / f"{turn}.tmp"
        text = json.dumps(record)
        temporary.write_text(text)
        path = directory / f"{turn}.json"
        temporary.replace(path)
        kept = self._kept_records()
        self._records_bytes += len(text) - kept.pop(path, 0)
        kept[path] = len(text)
        while len(kept) > 1 and self._records_bytes > MAX_RECORD_BYTES:
            oldest, size = kept.popitem(last=False)
            oldest.unlink(missing_ok=True)
            self._records_bytes -= size

    def _kept_records(self) -> collections.OrderedDict[Path, int]:
        """The records on disk, oldest first — by time written, and by turn (a coarse clock gives records of one
        tick the same time) — with their sizes: one walk of them the first time, for a store a server reopens."""
        if self._records is None:
            found = [(path, path.stat()) for path in (self._directory / RECORDS).glob("*/*.json")]
            found.sort(key=lambda item: (item[1].st_mtime_ns, int(item[0].stem)))
            self._records = collections.OrderedDict((path, stat.st_size) for path, stat in found)
            self._records_bytes = sum(self._records.values())
        return self._records

    def load_record(self, session_id: str, turn: int) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads((self._directory / RECORDS / session_id / f"{turn}.json").read_text())
        except FileNotFoundError:
            return None
        return record

    # -- persistence ------------------------------------------------------------------------------------------

    def _record(self, seal: int, path: str, state: State | None) -> None:
        self._index.add(seal, path, state)
        self._unsaved.append((seal, path))

    def _save_versions(self) -> None:
        lines = []
        for seal, path in self._unsaved:
            state = self._index.at(path, seal)[1]
            lines.append(json.dumps([seal, path, state.to_list() if state is not None else None]) + "\n")
        self._unsaved.clear()
        assert self._pack is not None
        self._pack.flush()  # before the versions that name its contents
        if lines:
            with (self._directory / VERSIONS).open("a") as versions:
                versions.write("".join(lines))
            self._logged += len(lines)

    @property
    def filling(self) -> bool:
        """The contents kept have grown to most of what the store may hold: time to ``collect``."""
        assert self._pack is not None
        return self._pack.filling

    def collect(self, keep_from: int) -> None:
        """``compact``, then drop every content that neither a state still recorded nor a turn's record names."""
        self.compact(keep_from)
        named = {state.digest for versions in self._index.versions.values() for _, state in versions if state}
        for path in (self._directory / RECORDS).glob("*/*.json"):
            with contextlib.suppress(OSError, ValueError):
                for change in json.loads(path.read_text())["changes"]:
                    named.update(side["digest"] for side in (change["before"], change["after"]) if side)
        assert self._pack is not None
        self._pack.rewrite({digest for digest in named if digest is not None})

    @property
    def crowded(self) -> bool:
        """Whether versions.jsonl holds several times more history than paths: time to ``compact``."""
        return self._logged >= COMPACT_FROM and self._logged >= 4 * len(self._index.versions)

    def compact(self, keep_from: int) -> None:
        """Forget each path's history before seal ``keep_from`` but its state there (and its base: seal 0, which
        says what the base hides): no turn to come starts before ``keep_from`` (the caller knows), and a turn that
        ended keeps its states in its record. So what churns (a turn that makes and deletes 100,000 files, turn
        after turn) keeps the log the size of the workspace's paths, not of their history."""
        self._save_versions()
        index = _Index()
        for path, versions in self._index.versions.items():
            earlier = [version for version in versions if version[0] < keep_from]
            kept = [version for version in earlier if version[0] == 0]
            if earlier and earlier[-1][0] != 0:
                kept.append(earlier[-1])
            for seal, state in kept + [version for version in versions if version[0] >= keep_from]:
                index.add(seal, path, state)
        self._index = index
        lines = [
            json.dumps([seal, path, state.to_list() if state is not None else None]) + "\n"
            for path, versions in index.versions.items()
            for seal, state in versions
        ]
        temporary = self._directory / f"{VERSIONS}.tmp"
        temporary.write_text("".join(lines))
        temporary.replace(self._directory / VERSIONS)
        self._logged = len(lines)

    def _save_listing(self, seal: int = 0) -> None:
        entries = {path: [seen.kind, seen.inode, seen.ctime_ns] for path, seen in self._expected.items()}
        temporary = self._directory / f"{LISTING}.tmp"
        temporary.write_text(json.dumps({"seal": seal, "entries": entries}))
        temporary.replace(self._directory / LISTING)

    def _save_seal(self, number: int) -> None:
        self.last_seal = number
        (self._directory / SEAL).write_text(str(number))

    def close(self) -> None:
        self._watch.close()
        self._base.close()
        if self._pack is not None:
            self._pack.close()
        os.close(self._live)

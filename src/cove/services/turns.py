"""TurnService: what each agent turn changed in its sandbox's ``/workspace`` — ``files_changed`` and the diff.

Seals (``runtime.turn_store``) are taken at each turn's edges, and the turn's changes are what differs between
them. The edges are the server's own: a turn's start is the seal taken before the runner was let go on it (the
first turn's when the session started; a queued turn's when the turn before it ended; a prompt to an idle
session's just before the prompt is sent), its end the seal taken when its ``turn_complete`` is ingested. The
runner waits for the server's word (``sealed``) before it begins a turn, so what a turn wrote never falls before
its start. Everything is computed here, on the host, from the sandbox's files: a runner's journal can say nothing
about what changed.

Each session's edges (the seal its next turn starts from, and each turn's start) are kept beside the sandbox's
store, so a server restart in the middle of a turn still finds where it began: as a log a line of which is the
whole state, appended at each change (a few times a turn, on the loop: replacing a file through a rename costs a
flush of it on ext4, about half a millisecond) and rewritten as one line when it grows; its last whole line wins.
A sandbox's store and its turns' diffs go when its files do (a kill or a restore).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cove.runtime.safe_open import UnsafePath
from cove.runtime.turn_diff import Change, Page, page, summarize
from cove.runtime.turn_store import TurnStore
from cove.services.errors import CoveServiceError, InvalidRequest, SandboxNotRunning, TurnNotFound
from cove.services.principal import SYSTEM
from cove.services.sandboxes import RUNNING, SandboxService

log = logging.getLogger("cove.turns")

MAX_LISTED = 1000  # files_changed entries in a turn_complete event
MAX_RECORDED = 10_000  # changes a turn's record (its diff) holds; a turn that changed more says how many
MAX_EDGES_LOG = 64 * 1024  # bytes of a session's edges log before it is rewritten as its last line
SESSIONS = "sessions"
_CURSOR = re.compile(r"(\d{1,9}):(\d{1,9})")


@dataclass
class _Edges:
    """A session's turn edges: the seal its next turn starts from, each turn's start, and how many more turns the
    server let begin than it has sealed the end of — what bounds the seals a runner can ask for by saying turns
    ended: one per prompt the API took."""

    next_start: int | None = None
    starts: dict[int, int] = field(default_factory=dict)
    expected: int = 0


@dataclass(frozen=True)
class FilesChanged:
    """What a turn_complete event carries of its turn's changes."""

    files: list[dict[str, Any]]
    omitted: int  # entries beyond MAX_LISTED, in the diff only


@dataclass(frozen=True)
class DiffPage:
    turn: int
    files: list[dict[str, Any]]
    diff: str
    next_cursor: str | None
    total_files: int


def read_edges(path: Path) -> _Edges:
    """A session's edges, from the last whole line of its log (none yet: empty edges)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    return next(filter(None, map(_edges_of, reversed(lines))), None) or _Edges()


def _edges_of(line: str) -> _Edges | None:
    """One line of a session's edges log; None for a line cut short by a crash."""
    try:
        data = json.loads(line)
        starts = {int(turn): int(seal) for turn, seal in data["starts"].items()}
        return _Edges(data["next_start"], starts, int(data["expected"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    """``"<file>:<line>"``: the index of a change in the turn's list, and the line of its diff a page starts at."""
    if cursor is None:
        return 0, 0
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise InvalidRequest("cursor must be the next_cursor of a previous page (<file>:<line>)")
    return int(match.group(1)), int(match.group(2))


class TurnService:
    def __init__(self, sandboxes: SandboxService, directory: Path) -> None:
        self._sandboxes = sandboxes
        self._directory = directory
        self._stores: dict[str, TurnStore] = {}
        self._edges: dict[str, _Edges] = {}  # by session
        self._edges_logged: dict[str, int] = {}  # by session: bytes this server appended to its edges log
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # by sandbox
        sandboxes.on_stopped.append(self.discard)
        sandboxes.on_restarting.append(self.discard)

    # -- stores ----------------------------------------------------------------------------------------------

    async def _store(self, sandbox_id: str) -> TurnStore:
        """The sandbox's store: opened once per server, begun (the base copied) the first time ever."""
        store = self._stores.get(sandbox_id)
        if store is not None:
            return store
        sandbox = await self._sandboxes.get(sandbox_id)
        if sandbox.state != RUNNING:
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {sandbox.state}: its turns' changes went with its files")
        store = await asyncio.to_thread(self._open, sandbox_id, sandbox.uid)
        self._stores[sandbox_id] = store
        return store

    def _open(self, sandbox_id: str, uid: int) -> TurnStore:
        directory = self._directory / sandbox_id
        fresh = not (directory / "seal").exists()
        paths = self._sandboxes.paths(sandbox_id)
        base = self._sandboxes.storage.workspace_base(paths.root, uid, fresh)
        store = TurnStore(directory, paths.workspace, uid, base)
        if fresh:
            store.begin()
        else:
            store.load()
        return store

    async def discard(self, sandbox_id: str) -> None:
        """The sandbox's files are going (a kill) or being replaced (a restore): so are its turns' states."""
        async with self._locks[sandbox_id]:
            store = self._stores.pop(sandbox_id, None)
            if store is not None:
                store.close()
            await asyncio.to_thread(shutil.rmtree, self._directory / sandbox_id, True)

    async def recover(self) -> None:
        """After a (re)start: stores of sandboxes that no longer run are removed."""
        running = {record.id for record in await self._sandboxes.list(SYSTEM, state=RUNNING)}
        if self._directory.exists():
            for directory in self._directory.iterdir():
                if directory.name not in running:
                    await asyncio.to_thread(shutil.rmtree, directory, True)

    async def _seal(self, sandbox_id: str) -> int:
        async with self._locks[sandbox_id]:
            store = await self._store(sandbox_id)
            candidates = store.pending()
            if candidates == set():
                return store.seal(candidates)  # nothing reported since the last seal: no file to read or write
            return await asyncio.to_thread(store.seal, candidates)

    # -- a session's edges -----------------------------------------------------------------------------------

    def _edges_path(self, sandbox_id: str, session_id: str) -> Path:
        return self._directory / sandbox_id / SESSIONS / f"{session_id}.jsonl"

    def _load_edges(self, sandbox_id: str, session_id: str) -> _Edges:
        if session_id not in self._edges:
            self._edges[session_id] = read_edges(self._edges_path(sandbox_id, session_id))
        return self._edges[session_id]

    def _save_edges(self, sandbox_id: str, session_id: str, edges: _Edges) -> None:
        path = self._edges_path(sandbox_id, session_id)
        line = json.dumps(asdict(edges)) + "\n"
        logged = self._edges_logged.get(session_id)
        if logged is not None and logged <= MAX_EDGES_LOG:
            with contextlib.suppress(FileNotFoundError):  # the sandbox's store went (a restore): written anew
                with path.open("a") as log_file:
                    log_file.write(line)
                self._edges_logged[session_id] = logged + len(line)
                return
        # This server's first write, or a log grown long: one line, put in place whole.
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(line)
        temporary.replace(path)
        self._edges_logged[session_id] = len(line)

    async def mark(self, sandbox_id: str, session_id: str) -> None:
        """Seal now: the session's next turn starts here (its first, or a prompt to an idle session's)."""
        seal = await self._seal(sandbox_id)
        edges = self._load_edges(sandbox_id, session_id)
        edges.next_start = seal
        self._save_edges(sandbox_id, session_id, edges)

    def has_edges(self, sandbox_id: str, session_id: str) -> bool:
        """Whether the session's first edge was sealed (by this server or one before it)."""
        return self._load_edges(sandbox_id, session_id).next_start is not None

    def expect_turn(self, sandbox_id: str, session_id: str) -> None:
        """The API took a prompt for the session: one more turn will end, and its end be sealed."""
        edges = self._load_edges(sandbox_id, session_id)
        edges.expected += 1
        self._save_edges(sandbox_id, session_id, edges)

    def turns_expected(self, sandbox_id: str, session_id: str) -> int:
        """Turns the API took a prompt for whose end is not sealed yet: queued ones wait for the last seal."""
        return self._load_edges(sandbox_id, session_id).expected

    def started(self, sandbox_id: str, session_id: str, turn: int) -> None:
        """A turn began (its ``turn_started``): it starts from the session's last edge."""
        edges = self._load_edges(sandbox_id, session_id)
        if edges.next_start is not None and turn not in edges.starts:
            edges.starts[turn] = edges.next_start
            self._save_edges(sandbox_id, session_id, edges)

    def ended(self, sandbox_id: str, session_id: str) -> None:
        """The session is over: no turn of it will start, so the history before its last edge may go."""
        self._edges.pop(session_id, None)
        self._edges_logged.pop(session_id, None)
        self._edges_path(sandbox_id, session_id).unlink(missing_ok=True)

    async def completed(self, sandbox_id: str, session_id: str, turn: int) -> FilesChanged | None:
        """A turn ended: seal, and what changed since its start (None when its start is not known — it began
        before the server kept the sandbox's turns — or when no prompt is left whose turn could have ended: a
        runner saying more turns ended than it was given). The next turn starts from this seal."""
        edges = self._load_edges(sandbox_id, session_id)
        if edges.expected <= 0:
            return None
        edges.expected -= 1
        start = edges.starts.get(turn)
        async with self._locks[sandbox_id]:
            store = await self._store(sandbox_id)

            candidates = store.pending()

            def seal_and_record() -> tuple[int, tuple[list[Change], int] | None]:
                end = store.seal(candidates)
                if start is None:
                    return end, None
                # Under the lock: reading a turn's changes may read (and record) base states.
                return end, self._record(store, session_id, turn, start, end)

            # This edge is on the way of every turn's last event. When inotify reported nothing and no seal came
            # since the turn began, the turn changed nothing: its end is its start, with nothing to read or write,
            # on the loop rather than through a hand-off to a thread that costs more than the work on a busy
            # machine. Otherwise, one hand-off for the whole edge.
            if candidates == set() and start in (None, store.last_seal):
                end, recorded = seal_and_record()
            else:
                end, recorded = await asyncio.to_thread(seal_and_record)
            edges.next_start = end
            edges.starts.pop(turn, None)  # its changes are in its record now
            self._save_edges(sandbox_id, session_id, edges)
            if store.filling:
                await asyncio.to_thread(store.collect, self._keep_from(sandbox_id))
            elif store.crowded:
                await asyncio.to_thread(store.compact, self._keep_from(sandbox_id))
        if recorded is None:
            return None
        changes, total = recorded
        return FilesChanged([change.public() for change in changes[:MAX_LISTED]], max(0, total - MAX_LISTED))

    @staticmethod
    def _record(store: TurnStore, session_id: str, turn: int, start: int, end: int) -> tuple[list[Change], int]:
        """The turn's changes, summarized and kept as its record: the first ``MAX_RECORDED`` of them (by path),
        and how many there were."""
        found = store.changes(start, end)
        changes = summarize(found[:MAX_RECORDED], store.content)
        total = len(changes) + len(found[MAX_RECORDED:])  # a rename is one change of two paths
        record = {"turn": turn, "changes": [change.to_json() for change in changes], "total": total}
        store.save_record(session_id, turn, record)
        return changes, total

    def _keep_from(self, sandbox_id: str) -> int:
        """The earliest seal a turn to come may start from: no session of the sandbox needs history before it."""
        needed = []
        for path in (self._directory / sandbox_id / SESSIONS).glob("*.jsonl"):
            edges = self._load_edges(sandbox_id, path.stem)
            needed += [seal for seal in (edges.next_start, *edges.starts.values()) if seal is not None]
        return min(needed, default=0)

    # -- the diff ---------------------------------------------------------------------------------------------

    async def diff(self, sandbox_id: str, session_id: str, turn: int, cursor: str | None, limit: int) -> DiffPage:
        """One page of a turn's unified diff, from ``cursor`` (None: the start), of at most ``limit`` bytes."""
        position = parse_cursor(cursor)
        try:
            async with self._locks[sandbox_id]:
                store = await self._store(sandbox_id)
        except (OSError, UnsafePath) as exc:
            raise CoveServiceError(f"the turns of sandbox {sandbox_id} cannot be read: {exc}") from exc
        # A record and the contents it names are written once and never change: read without the store's lock.
        record = await asyncio.to_thread(store.load_record, session_id, turn)
        if record is None:
            raise TurnNotFound(
                f"no completed turn {turn} of session {session_id} with its changes kept (a turn's diff exists once "
                "its turn_complete does, while its sandbox runs)"
            )
        changes = [Change.from_json(change) for change in record["changes"]]
        if position[0] > len(changes):
            raise InvalidRequest("cursor is past the end of the diff")
        shown: Page = await asyncio.to_thread(page, changes, store.content, position, limit)
        following = f"{shown.next_cursor[0]}:{shown.next_cursor[1]}" if shown.next_cursor is not None else None
        total = int(record.get("total", len(changes)))
        text = shown.text.decode("utf-8", "replace")
        if following is None and total > len(changes):  # a line git apply passes over, as any outside a diff
            text += f"# {total - len(changes)} more files changed: a turn's diff shows its first {len(changes)}\n"
        return DiffPage(
            turn=turn,
            files=[changes[index].public() for index in shown.files],
            diff=text,
            next_cursor=following,
            total_files=total,
        )

    async def close(self) -> None:
        for sandbox_id in list(self._stores):
            with contextlib.suppress(OSError):
                self._stores.pop(sandbox_id).close()

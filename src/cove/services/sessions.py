"""SessionService: agent sessions — start, steer, follow, resume — on top of sandboxes and the event log.

The runner inside the sandbox journals every event before anything else sees it; this service ingests each
journal into the event log (inotify wakes it), derives the session's summary from the events, and forwards
commands to the runner's control socket. A server restart loses nothing: ingest resumes from the cursor stored
with the last batch, and a runner that died unseen gets an ``exit`` event of Cove's own from its exit status.

Everything the runner writes is the sandbox's, so hostile: the journal and the socket are reached only through
``runtime.agent_files`` (opened safely, read in bounded pieces) and transcripts through ``runtime.transcripts``;
a journal line that is not an event of this session is skipped, and nothing is ever written into the sandbox's
tree from here (the supervisor prepares the session's directory).

What a turn changed is the server's to say (``services.turns``): the workspace is sealed at each turn's edges —
before the runner is let go on a turn (the ``sealed`` control request, which the runner waits for) and when its
``turn_complete`` is ingested — and ``files_changed`` is written into that event here, whatever the runner put
there.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import signal
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard, TypeVar

from cove.events.log import EventLog, ScrollbackEnd
from cove.guest.agent_config import AgentConfig
from cove.guest.journal import utc_now
from cove.runtime import agent_files, transcripts
from cove.runtime.agent_files import JournalTail
from cove.runtime.bwrap import GUEST_CODE, GUEST_RUN, runner_python
from cove.runtime.guest_client import GuestError, GuestUnavailable
from cove.runtime.inotify import DirectoryWatcher
from cove.runtime.safe_open import UnsafePath
from cove.runtime.spec import SandboxSpec
from cove.runtime.transcripts import SavedTranscript
from cove.services.errors import (
    AgentUnavailable,
    AlreadyResolved,
    CoveServiceError,
    InvalidRequest,
    PermissionNotFound,
    ResumeNotFound,
    SandboxNotRunning,
    SessionExited,
    SessionNotFound,
)
from cove.services.execs import ExecRequest, ExecService
from cove.services.principal import SYSTEM, Access, Principal
from cove.services.quotas import QuotaLocks, admit
from cove.services.sandboxes import SandboxService
from cove.services.session_state import CONFIG_KEYS, FINAL, IDLE, STARTING, apply_event, is_setting, summary_values
from cove.services.turns import DiffPage, TurnService
from cove.store.events import StoredEvent
from cove.store.sandboxes import SandboxRecord
from cove.store.sessions import SessionRecord, SessionStore, zero_usage
from cove.wire.bounds import MAX_SEQ

log = logging.getLogger("cove.sessions")
T = TypeVar("T")

CONTROL_TIMEOUT = 30.0
INLINE_READ_BYTES = 256 * 1024
INLINE_LINES = 2000  # journal lines parsed on the event loop in one batch; more are parsed in a worker thread
DATABASE_WRITE_FACTOR = 2  # a stored byte takes the database file's byte and, until a checkpoint, the WAL's
USAGE_SAVE_DELAY = 1.0  # at most this long between a model call and its usage reaching the database
KILL_WAIT = 15.0
# The runner's own defaults, so a session's reported config is what the runner really uses.
_RUNNER_DEFAULTS = AgentConfig(session_id="defaults")
CONFIG_DEFAULTS: dict[str, Any] = {name: getattr(_RUNNER_DEFAULTS, name) for name in CONFIG_KEYS}


@dataclass(frozen=True)
class StartRequest:
    prompt: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    resume: str | None = None
    fork: bool = False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def project_dir_name(cwd: str) -> str:
    """Claude Code's transcript folder for a working directory: every non-alphanumeric becomes '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


async def _read(size: int, read: Callable[[], T]) -> T:
    """``read()`` in this thread when it reads ``size`` bytes or fewer (the usual case: what one turn added, in the
    page cache, which a hand-off to a worker thread would cost more than), else in a worker thread (catching up
    on a long journal or transcript after a restart)."""
    return read() if size <= INLINE_READ_BYTES else await asyncio.to_thread(read)


async def _read_journal(journal: JournalTail, offset: int) -> agent_files.JournalRead:
    added = journal.size() - offset
    return await _read(max(added, 0), functools.partial(journal.read, offset))


_Control = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class SessionUsage:
    """A tenant's agent sessions: how many have not ended, and the tokens and cost of all of them."""

    live: int
    usage: dict[str, int]  # as Claude Code reported it
    metered_usage: dict[str, int]  # as Cove's model proxy counted it
    total_cost_usd: float


class _Follower:
    """Ingests one session's journal and watches its runner process until it exits."""

    def __init__(self, record: SessionRecord, journal: JournalTail, sandbox: SandboxRecord) -> None:
        self.sandbox_id = record.sandbox_id
        self.journal = journal
        self.uid = sandbox.uid  # the sandbox's: what the session's files and sockets must be owned by
        # What its sessions may keep in the database: the sandbox's disk quota (None: no quota).
        disk_mb = SandboxSpec.from_json(sandbox.spec).limits.disk_mb
        self.quota = disk_mb * 1024 * 1024 if disk_mb else None
        self.wake = asyncio.Event()
        self.exited = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.accepted_turn = 0
        # The session as the ingester keeps it, event by event (and the commands as they change it): fresher
        # than the database, and no read to get it.
        self.record = record
        # Metered usage not stored yet (see SessionService.record_usage): a delayed write is pending.
        self.usage_unsaved = False
        # Set when the runner ended and its journal cannot be written any more (its sandbox is gone): the
        # ingester then closes the log with an ``exit`` of its own.
        self.lost_exit: int | None = None
        # The runner's control socket, kept open between commands (one at a time).
        self.control: _Control | None = None
        self.warned = False  # a refused journal is logged once
        self.control_lock = asyncio.Lock()
        # Held while the workspace is sealed at a turn's edge, and while a prompt to an idle session is sent after
        # its seal: the edge a turn starts from is never taken after the turn has begun.
        self.edge_lock = asyncio.Lock()

    def close_control(self) -> None:
        if self.control is not None:
            self.control[1].close()
            self.control = None


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        events: EventLog,
        sandboxes: SandboxService,
        execs: ExecService,
        watcher: DirectoryWatcher,
        turns: TurnService,
    ) -> None:
        self._store = store
        self._events = events
        self._sandboxes = sandboxes
        self._execs = execs
        self._watcher = watcher
        self._turns = turns
        self._followers: dict[str, _Follower] = {}
        self._tokens: dict[str, tuple[str, int]] = {}  # token hash -> (session, its sandbox's uid)
        self._saved_transcripts: dict[str, SavedTranscript] = {}  # by transcript file name
        # Who stored each conversation last (sandbox, tenant), as this server wrote or read it: it is the only writer
        # of the transcripts, so the lookup before every turn's save is a database read only the first time.
        self._owners: dict[str, tuple[str, str | None]] = {}
        self._stored: dict[str, int] = {}  # database bytes per sandbox, counted against its disk quota
        self._over_quota: set[str] = set()
        self._quota_locks = QuotaLocks()

    # -- queries -----------------------------------------------------------------------------------------

    async def get(
        self, who: Principal, session_id: str, sandbox_id: str | None = None, access: Access = Access.VIEW
    ) -> SessionRecord:
        """The session, if ``who`` may reach it — the lookup every caller's operation on a session goes through.
        Another tenant's session, or one outside a token's scope, does not exist for ``who`` (SessionNotFound);
        one it sees but may not ``access`` is Forbidden."""
        record = await self._get(session_id, sandbox_id)
        if not who.sees(record.tenant_id, record.sandbox_id, record.id):
            raise SessionNotFound(_no_session(session_id, sandbox_id))
        who.require(access, f"in agent session {session_id}")
        return record

    async def _get(self, session_id: str, sandbox_id: str | None = None) -> SessionRecord:
        follower = self._followers.get(session_id)
        record = follower.record if follower is not None else await self._store.get(session_id)
        if record is None or (sandbox_id is not None and record.sandbox_id != sandbox_id):
            raise SessionNotFound(_no_session(session_id, sandbox_id))
        return record

    async def list(
        self,
        who: Principal,
        *,
        sandbox_id: str | None = None,
        status: str | None = None,
        tenant_id: str | None = None,
    ) -> list[SessionRecord]:
        """The sessions ``who`` sees (the admin: every tenant's, or ``tenant_id``'s), of a sandbox or of all."""
        if sandbox_id is not None:
            await self._sandboxes.authorize(who, sandbox_id, Access.VIEW)
        who.require(Access.VIEW)
        if not who.admin and tenant_id not in (None, who.tenant_id):
            return []
        own = tenant_id or (None if who.admin else who.tenant_id)
        records = await self._store.list(sandbox_id=sandbox_id, status=status, tenant_id=own)
        return [r for r in records if who.sees(r.tenant_id, r.sandbox_id, r.id)]

    async def usage(self, tenant_id: str) -> SessionUsage:
        records = await self._store.list(tenant_id=tenant_id)
        usage, metered = zero_usage(), zero_usage()
        for record in records:
            for key in usage:
                usage[key] += int(record.usage.get(key, 0))
                metered[key] += int(record.proxy_usage.get(key, 0))
        return SessionUsage(
            live=sum(record.status not in FINAL for record in records),
            usage=usage,
            metered_usage=metered,
            total_cost_usd=sum(record.total_cost_usd for record in records),
        )

    def queued(self, record: SessionRecord) -> int:
        follower = self._followers.get(record.id)
        if follower is None or record.status in FINAL:
            return 0
        running = 1 if record.status == "running" else 0
        return max(0, follower.accepted_turn - record.turns - running)

    async def events(self, record: SessionRecord, after: int, limit: int) -> builtins.list[StoredEvent]:
        """A page of the events of a session ``get`` found."""
        return await self._events.read(record.id, after, limit)

    async def diff(
        self, who: Principal, sandbox_id: str, session_id: str, turn: int, cursor: str | None, limit: int
    ) -> DiffPage:
        """A page of what a turn of the session changed, for whoever may read the session (its token too)."""
        record = await self.get(who, session_id, sandbox_id, Access.VIEW)
        return await self._turns.diff(record.sandbox_id, record.id, turn, cursor, limit)

    def follow(
        self, record: SessionRecord, after: int, until: asyncio.Future[str] | None = None
    ) -> AsyncGenerator[builtins.list[StoredEvent] | ScrollbackEnd, None]:
        """The events of a session ``get`` found after ``after``, then live ones, until it ends or ``until`` is
        done (its client's credential was revoked, say)."""
        return self._events.subscribe(record.id, after, until=until)

    async def resolve_token(self, token: str, uid: int) -> str | None:
        """For the model proxy: which live session presents this token, from the sandbox it was issued to (the
        sandbox's uid, which the proxy read off the connection's hand-off socket). A token copied into another
        sandbox opens nothing there."""
        digest = hash_token(token)
        if digest not in self._tokens:
            record = await self._store.by_token_hash(digest)
            if record is None or record.status in FINAL:
                return None
            try:
                sandbox = await self._sandboxes.get(record.sandbox_id)
            except CoveServiceError:
                return None
            self._tokens[digest] = (record.id, sandbox.uid)
        session_id, owner = self._tokens[digest]
        return session_id if owner == uid else None

    async def record_usage(self, session_id: str, usage: dict[str, int]) -> None:
        """Add a model call's usage. A followed session keeps it in memory and stores it with its next ingest
        batch (the runner journals the call's answer right after it), or within a second if none comes: a
        write less per model call, on the cores the agent needs."""
        follower = self._followers.get(session_id)
        record = follower.record if follower is not None else await self._store.get(session_id)
        if record is None:
            return
        record.proxy_usage = {
            k: record.proxy_usage.get(k, 0) + usage.get(k, 0) for k in set(record.proxy_usage) | set(usage)
        }
        if follower is None:
            await self._store.update(session_id, proxy_usage=record.proxy_usage)
        elif not follower.usage_unsaved:
            follower.usage_unsaved = True
            asyncio.get_running_loop().call_later(USAGE_SAVE_DELAY, self._save_usage, follower)

    def _save_usage(self, follower: _Follower) -> None:
        if follower.usage_unsaved:
            follower.tasks.append(asyncio.create_task(self._store_usage(follower)))

    async def _store_usage(self, follower: _Follower) -> None:
        follower.usage_unsaved = False
        await self._store.update(follower.record.id, proxy_usage=follower.record.proxy_usage)

    # -- start -------------------------------------------------------------------------------------------

    async def start(self, who: Principal, sandbox_id: str, request: StartRequest) -> SessionRecord:
        sandbox = await self._sandboxes.authorize(who, sandbox_id, Access.START_AGENT)
        if sandbox.state != "running":
            raise SandboxNotRunning(f"sandbox {sandbox_id} is {sandbox.state}; start agents in a running sandbox")
        config = {**CONFIG_DEFAULTS, **{k: v for k, v in request.config.items() if v is not None}}
        if request.fork and not request.resume:
            raise InvalidRequest("fork needs resume: the claude_session_id of the conversation to branch")
        if request.resume:
            await self._ensure_transcript(sandbox, request.resume, str(config["cwd"]))
        token = "cove_session_" + secrets.token_urlsafe(24)
        now = time.time()
        record = SessionRecord(
            id="ses_" + secrets.token_hex(8),
            sandbox_id=sandbox_id,
            status=STARTING,
            token_hash=hash_token(token),
            config=config,
            created_at=now,
            updated_at=now,
            resume=request.resume,
            fork=int(request.fork),
            usage=zero_usage(),
            proxy_usage=zero_usage(),
            tenant_id=sandbox.tenant_id,
        )
        async with self._quota_locks.hold(who):
            if who.quotas is not None:
                live = (await self.usage(who.tenant_id)).live
                admit("agent_sessions", who.quotas.agent_sessions, live, 1, f"{live} have not ended")
            await self._store.insert(record)
        self._tokens[record.token_hash] = (record.id, sandbox.uid)
        runner_config = {
            "session_id": record.id,
            "prompt": request.prompt,
            "resume": request.resume,
            "fork": request.fork,
            "await_seals": True,
            **config,
        }
        try:
            guest = await self._sandboxes.guest(SYSTEM, sandbox_id, Access.EXEC)
            await guest.request("prepare_agent", session_id=record.id, config=runner_config)
        except (GuestError, GuestUnavailable) as exc:
            await self._store.update(record.id, status="failed", error={"code": "start_failed", "message": str(exc)})
            raise AgentUnavailable(f"sandbox {sandbox_id} could not prepare the agent session: {exc}") from exc
        follower = self._follow(record, sandbox)
        if request.prompt:
            follower.accepted_turn = 1
            self._turns.expect_turn(sandbox_id, record.id)
        # The workspace before the first turn (a whole copy, the first time a sandbox has a session: concurrent
        # with the CLI's start-up); the runner begins no turn before it.
        follower.tasks.append(asyncio.create_task(self._first_edge(record, follower)))
        # The runner finds the model proxy's port in the sandbox itself (the supervisor's forwarder writes it).
        env = {
            "ANTHROPIC_API_KEY": token,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        # PYTHONPATH: Cove's code as bound into the sandbox wins over an editable install's host path.
        env["PYTHONPATH"] = GUEST_CODE
        session_dir = f"{GUEST_RUN}/{agent_files.session_dir(record.id)}"
        command = [runner_python(), "-m", "cove.guest.agent_runner", session_dir]
        try:
            runner = ExecRequest(command=command, env=env, tag=f"agent:{record.id}")
            info = await self._execs.start(SYSTEM, sandbox_id, runner)
        except Exception as exc:
            await self._store.update(record.id, status="failed", error={"code": "start_failed", "message": str(exc)})
            self._unfollow(record.id)
            raise
        record.process_id = str(info["id"])
        await self._store.update(record.id, process_id=record.process_id)
        follower.tasks.append(asyncio.create_task(self._watch_process(record)))
        return await self._get(record.id)

    async def _ensure_transcript(self, sandbox: SandboxRecord, claude_session_id: str, cwd: str) -> None:
        """A resume must find its conversation: in the sandbox, or from Cove's stored copy of its tenant's
        conversations — never silently start a fresh one, never hand out another tenant's."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", claude_session_id):
            raise InvalidRequest("resume must be a claude_session_id (letters, digits, '-' and '_')")
        sandbox_id = sandbox.id
        home = self._sandboxes.paths(sandbox_id).home
        if await asyncio.to_thread(transcripts.exists, home, sandbox.uid, claude_session_id):
            return
        stored = await self._store.transcript(claude_session_id, sandbox.tenant_id)
        if stored is None:
            raise ResumeNotFound(
                f"no conversation {claude_session_id!r} in sandbox {sandbox_id} or in Cove's transcript store; "
                "nothing was started"
            )
        _project, content = stored
        guest = await self._sandboxes.guest(SYSTEM, sandbox_id, Access.FILES)
        path = f"/home/user/.claude/projects/{project_dir_name(cwd)}/{_transcript_name(claude_session_id)}"

        async def chunks() -> Any:
            yield content.encode()

        try:
            await guest.write_file(path, chunks(), 0o600)
        except (GuestError, GuestUnavailable) as exc:
            raise AgentUnavailable(f"could not put the stored transcript in place: {exc}") from exc

    # -- following a session -----------------------------------------------------------------------------

    def _follow(self, record: SessionRecord, sandbox: SandboxRecord) -> _Follower:
        run_dir, uid = self._sandboxes.paths(record.sandbox_id).run, sandbox.uid
        follower = _Follower(record, JournalTail(run_dir, uid, record.id), sandbox)
        self._followers[record.id] = follower
        self._events.reopen(record.id)
        try:
            directory: int | None = agent_files.open_session_dir(run_dir, uid, record.id)
        except OSError as exc:  # gone with its sandbox, or not what it should be: polled (its exit comes anyway)
            log.warning("session %s: not watching its directory (%s)", record.id, exc)
            directory = None
        try:
            self._watcher.watch(record.id, directory, follower.wake.set)
        finally:
            if directory is not None:
                os.close(directory)
        follower.tasks.append(asyncio.create_task(self._ingest(record.id, follower)))
        return follower

    def _unfollow(self, session_id: str) -> None:
        follower = self._followers.pop(session_id, None)
        if follower is not None:
            for task in follower.tasks:
                task.cancel()
            follower.close_control()

    async def _ingest(self, session_id: str, follower: _Follower) -> None:
        record = follower.record
        try:
            while True:
                read = await _read_journal(follower.journal, record.journal_offset)
                lines, offset = read.lines, read.offset
                if read.skipped:
                    log.warning("session %s: skipped a journal line of %d bytes (too long)", session_id, read.skipped)
                if follower.journal.refused is not None and not follower.warned:
                    follower.warned = True
                    log.warning("session %s: its journal is refused: %s", session_id, follower.journal.refused)
                if not lines and follower.lost_exit is not None and record.status not in FINAL:
                    lines = [_exit_line(record, follower.lost_exit)]
                if lines or offset != record.journal_offset:
                    await self._ingest_batch(record, lines, offset)
                if record.status in FINAL and record.exit_code is not None:
                    break
                # inotify wakes us at once; the timeout only guards against a lost notification. (asyncio.timeout
                # rather than wait_for, which would make a task of every wait, on the path of every event.)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await follower.wake.wait()
                follower.wake.clear()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("ingest of session %s failed", session_id)
        finally:
            self._tokens.pop(record.token_hash, None)  # an ended session's token opens nothing any more
            if record.claude_session_id:  # a session to come that continues it reads it whole, and its owner anew
                self._saved_transcripts.pop(_transcript_name(record.claude_session_id), None)
                self._owners.pop(record.claude_session_id, None)
            self._watcher.unwatch(session_id)
            follower.journal.close()
            self._events.close(session_id)
            follower.close_control()
            follower.exited.set()

    async def _ingest_batch(self, record: SessionRecord, lines: builtins.list[bytes], offset: int) -> None:
        batch: list[StoredEvent] = []
        completed_turn = False
        # Parsing is the cost of a batch, and a journal of tiny lines makes a pass millions of them: beyond a
        # few, in a worker thread (the loop keeps its turns; it would otherwise be held for seconds).
        parse = functools.partial(_events_of, record.id, lines)
        parsed = parse() if len(lines) <= INLINE_LINES else await asyncio.to_thread(parse)
        skipped = 0
        sealed: list[int] = []
        for text, event in parsed:
            if event is None:
                skipped += 1
                continue
            seq = event["seq"]
            if seq <= record.last_seq:
                continue  # already ingested before a restart
            if event.get("type") in ("turn_started", "turn_complete"):
                text = await self._turn_edge(record, event, text, sealed)
            elif event.get("type") == "exit":
                self._turns.ended(record.sandbox_id, record.id)
            apply_event(record, event)
            record.last_seq = seq
            batch.append(StoredEvent(seq, str(event.get("type")), text))
            completed_turn = completed_turn or event.get("type") == "turn_complete"
        if skipped:  # once a batch, not once a line: the journal must not be able to fill the host's disk with log
            log.warning("session %s: skipped %d journal lines that are not its events", record.id, skipped)
        record.journal_offset = offset
        follower = self._followers.get(record.id)
        if follower is not None:
            follower.usage_unsaved = False  # summary_values carries it
            await self._charge(follower, sum(len(event.data) for event in batch))
        await self._events.append(record.id, batch, summary_values(record))
        if follower is not None:
            for turn in sealed:  # after the event is out: the next turn begins once the runner hears this
                follower.tasks.append(asyncio.create_task(self._tell_sealed(record, turn)))
        if completed_turn and record.claude_session_id:
            await self._save_transcript(record)

    # -- turn edges (services.turns) ----------------------------------------------------------------------

    async def _first_edge(self, record: SessionRecord, follower: _Follower) -> None:
        async with follower.edge_lock:
            await self._mark(record)
        await self._tell_sealed(record, 0)

    async def _catch_up(self, record: SessionRecord, follower: _Follower) -> None:
        """After a restart: the previous server may have sealed a turn's end and stopped before the runner heard
        of it (it would wait ``SEAL_WAIT_S``), or before it sealed the first turn's start at all."""
        if self._turns.has_edges(record.sandbox_id, record.id):
            await self._tell_sealed(record, record.turns)
        else:
            await self._first_edge(record, follower)

    async def _mark(self, record: SessionRecord) -> None:
        """Seal the workspace: the session's next turn starts here. A failure costs the turns' changes, never
        the session: it is logged, and the turn's ``files_changed`` left out."""
        try:
            await self._turns.mark(record.sandbox_id, record.id)
        except (CoveServiceError, OSError, UnsafePath) as exc:
            log.warning("session %s: the workspace could not be sealed: %s", record.id, exc)

    async def _turn_edge(
        self, record: SessionRecord, event: dict[str, Any], text: str, sealed: builtins.list[int]
    ) -> str:
        """A turn began or ended. At its end the workspace is sealed and the event gets the server's
        ``files_changed`` (whatever the runner wrote there goes); returns the event's text as stored."""
        turn = event.get("turn")
        if type(turn) is not int or not 0 < turn < MAX_SEQ:
            return text
        if event["type"] == "turn_started":
            self._turns.started(record.sandbox_id, record.id, turn)
            return text
        changed = None
        follower = self._followers.get(record.id)
        try:
            async with follower.edge_lock if follower is not None else contextlib.nullcontext():
                changed = await self._turns.completed(record.sandbox_id, record.id, turn)
        except (CoveServiceError, OSError, UnsafePath) as exc:
            log.warning("session %s: what turn %d changed is not known: %s", record.id, turn, exc)
        if self._turns.turns_expected(record.sandbox_id, record.id):
            sealed.append(turn)  # a queued turn waits for it; a prompt that comes later says it itself
        forged = {key: event.pop(key) for key in ("files_changed", "files_changed_omitted") if key in event}
        if changed is None and not forged:
            return text
        if changed is not None:
            event["files_changed"] = changed.files
            if changed.omitted:
                event["files_changed_omitted"] = changed.omitted
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False)

    async def _tell_sealed(self, record: SessionRecord, turn: int) -> None:
        """Let the runner begin the turn after ``turn``; a runner gone or deaf costs nothing here (it waits at
        most ``SEAL_WAIT_S`` for this)."""
        with contextlib.suppress(CoveServiceError, OSError):
            # Not a connection of its own kept for later: what the session's commands use is theirs to open.
            await self._control(record, "sealed", keep=False, turn=turn)

    async def _save_transcript(self, record: SessionRecord) -> None:
        """Keep Cove's own copy, so the conversation can be resumed in any sandbox, even after this one is gone.

        After the first save by this server, only what was appended since is read and stored (``transcript_tail``).
        """
        claude_session_id = record.claude_session_id
        if not claude_session_id:
            return
        follower = self._followers.get(record.id)
        if follower is None or not await self._may_store(record, claude_session_id):
            return
        home, uid = self._sandboxes.paths(record.sandbox_id).home, follower.uid
        name = _transcript_name(claude_session_id)
        saved = self._saved_transcripts.get(name)
        try:
            # The first read is whole (and so off the event loop); later ones are what the turn appended.
            size = transcripts.grew_by(home, uid, saved, name) if saved is not None else INLINE_READ_BYTES + 1
            found = await _read(size, functools.partial(transcripts.read, home, uid, name, saved))
            if found is not None and found.tail is not None:
                if not await self._charge(follower, len(found.tail)):
                    return
                if found.tail == "" or await self._store.append_transcript(claude_session_id, found.tail):
                    self._saved_transcripts[name] = found.saved
                    return
                found = await asyncio.to_thread(transcripts.read, home, uid, name, None)  # nothing stored to add to
        except UnsafePath as exc:
            log.warning("session %s: its transcript is not stored: %s", record.id, exc)
            return
        except OSError:
            return
        if found is not None and await self._charge(follower, len(found.text)):
            await self._store.save_transcript(
                claude_session_id, record.sandbox_id, record.tenant_id, found.project, found.text
            )
            self._owners[claude_session_id] = (record.sandbox_id, record.tenant_id)
            self._saved_transcripts[name] = found.saved

    async def _stop_over_quota(self, sandbox_id: str) -> None:
        with contextlib.suppress(CoveServiceError):
            await self._sandboxes.kill(SYSTEM, sandbox_id, reason="disk_limit")

    async def _may_store(self, record: SessionRecord, claude_session_id: str) -> bool:
        """Whether this session may (re)store this conversation. Its id comes from the sandbox, so a session may
        write only a conversation no one stored, one its own sandbox stored last, or the one it was started to
        continue (``resume``, not a fork) — and only its own tenant's: never another sandbox's, whose resume
        would hand it back poisoned."""
        owner = self._owners.get(claude_session_id)
        if owner is None:
            owner = await self._store.transcript_owner(claude_session_id)
            if owner is None:
                return True
            self._owners[claude_session_id] = owner
        sandbox_id, tenant_id = owner
        continues = record.resume == claude_session_id and not record.fork
        if tenant_id == record.tenant_id and (sandbox_id == record.sandbox_id or continues):
            return True
        log.warning("session %s: not storing conversation %s, which another sandbox owns", record.id, claude_session_id)
        return False

    async def _charge(self, follower: _Follower, size: int) -> bool:
        """Count ``size`` bytes more of the database against the sandbox's disk quota: what its sessions store
        (events, transcripts) stays on the host's disk, also after it is gone — twice while SQLite's write-ahead
        log holds it, hence the factor. Past the quota the sandbox is stopped (``disk_limit``), as it is for its
        files, and nothing more is stored for it."""
        size *= DATABASE_WRITE_FACTOR
        sandbox_id = follower.sandbox_id
        if sandbox_id not in self._stored:
            self._stored[sandbox_id] = await self._store.stored_bytes(sandbox_id)
        if follower.quota is not None and self._stored[sandbox_id] + size > follower.quota:
            if sandbox_id not in self._over_quota:
                self._over_quota.add(sandbox_id)
                log.warning("sandbox %s: what its sessions stored passed its disk quota; stopping it", sandbox_id)
                follower.tasks.append(asyncio.create_task(self._stop_over_quota(sandbox_id)))
            return False
        self._stored[sandbox_id] += size
        return True

    async def _watch_process(self, record: SessionRecord) -> None:
        """When the runner process ends, make sure its journal ends with ``exit`` (a SIGKILL leaves none)."""
        if record.process_id is None:
            return
        exit_code: int | None = None
        try:
            exit_code = (await self._execs.wait(SYSTEM, record.sandbox_id, record.process_id)).get("exit_code")
        except (GuestUnavailable, SandboxNotRunning, CoveServiceError, OSError):
            exit_code = 137  # the sandbox went away with the runner in it
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watching runner of %s failed", record.id)
            return
        self._runner_ended(record, exit_code or 0)

    def _runner_ended(self, record: SessionRecord, exit_code: int) -> None:
        """The runner is gone: once its journal is read to the end, the session closes with its own ``exit``
        or, if it wrote none (a SIGKILL), with one of Cove's. Nothing is written into the sandbox for that."""
        follower = self._followers.get(record.id)
        if follower is not None:
            if follower.lost_exit is None:
                follower.lost_exit = exit_code
            follower.wake.set()

    async def recover(self) -> None:
        """After a (re)start, follow every session that had not ended."""
        for record in await self._store.list():
            if record.status in FINAL and record.exit_code is not None:
                continue
            sandbox = await self._sandboxes.get(record.sandbox_id)
            follower = self._follow(record, sandbox)
            if sandbox.state == "running":
                follower.tasks.append(asyncio.create_task(self._watch_process(record)))
                follower.tasks.append(asyncio.create_task(self._catch_up(record, follower)))
            else:
                self._runner_ended(record, 137)

    async def sandbox_going(self, sandbox_id: str) -> None:
        """The sandbox is being killed or restored: its runners die with it and their journals may vanish,
        so each of its sessions is closed with an ``exit`` of Cove's own if the runner wrote none."""
        for follower in self._followers.values():
            if follower.sandbox_id == sandbox_id and follower.lost_exit is None:
                follower.lost_exit = 137
                follower.wake.set()

    async def shutdown(self) -> None:
        for session_id, follower in list(self._followers.items()):
            self._unfollow(session_id)
            if follower.usage_unsaved:
                await self._store_usage(follower)

    # -- commands ----------------------------------------------------------------------------------------

    async def _live(self, who: Principal, sandbox_id: str, session_id: str, access: Access) -> SessionRecord:
        record = await self.get(who, session_id, sandbox_id, access)
        if record.status in FINAL:
            raise SessionExited(
                f"agent session {session_id} has {record.status}"
                + (f" (exit code {record.exit_code})" if record.exit_code is not None else "")
                + "; start a new session, with resume=<claude_session_id> to continue its conversation"
            )
        return record

    async def _control(self, record: SessionRecord, op: str, keep: bool = True, **fields: Any) -> dict[str, Any]:
        """One request to the runner's control socket (a followed session's stays open between requests; with
        ``keep`` false, a request uses the kept connection if there is one, and keeps none of its own)."""
        request = json.dumps({"id": 1, "op": op, **fields}).encode() + b"\n"
        follower = self._followers.get(record.id)
        if follower is None or (not keep and follower.control is None):
            reader, writer = await self._connect_control(record)
            try:
                line = await self._exchange(record, op, reader, writer, request)
            finally:
                writer.close()
        else:
            async with follower.control_lock:
                line = await self._kept_control(record, follower, op, request)
        if not line:
            raise SessionExited(f"agent session {record.id} ended while handling {op}")
        return _reply_of(record, op, line)

    async def _kept_control(self, record: SessionRecord, follower: _Follower, op: str, request: bytes) -> bytes:
        """On the follower's kept connection (a connect and an accept less on every prompt). A connection the
        runner closed while it was kept is replaced once; nothing else is retried, so nothing runs twice."""
        for kept in (follower.control is not None, False):
            if follower.control is None:
                follower.control = await self._connect_control(record)
            try:
                line = await self._exchange(record, op, *follower.control, request)
            except AgentUnavailable:
                follower.close_control()
                raise
            if line or not kept:
                break
            follower.close_control()
        if not line:
            follower.close_control()
        return line

    async def _connect_control(self, record: SessionRecord) -> _Control:
        run_dir = self._sandboxes.paths(record.sandbox_id).run
        follower = self._followers.get(record.id)
        uid = follower.uid if follower is not None else (await self._sandboxes.get(record.sandbox_id)).uid
        deadline = time.monotonic() + CONTROL_TIMEOUT
        while True:
            try:
                return await agent_files.connect_control(run_dir, uid, record.id, limit=32 * 1024 * 1024)
            except UnsafePath as exc:
                raise AgentUnavailable(f"agent session {record.id}: {exc}") from exc
            except OSError as exc:
                current = await self._get(record.id)
                if current.status in FINAL:
                    raise SessionExited(f"agent session {record.id} has {current.status}") from exc
                if time.monotonic() > deadline:
                    raise AgentUnavailable(f"agent session {record.id} is not answering") from exc
                await asyncio.sleep(0.02)

    @staticmethod
    async def _exchange(
        record: SessionRecord, op: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> bytes:
        try:
            writer.write(request)
            await writer.drain()
            async with asyncio.timeout(CONTROL_TIMEOUT):
                return await reader.readline()
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a reply line over the limit
            raise AgentUnavailable(f"agent session {record.id} did not answer {op}") from exc

    async def prompt(self, who: Principal, sandbox_id: str, session_id: str, text: str) -> dict[str, Any]:
        record = await self._live(who, sandbox_id, session_id, Access.PROMPT)
        if not text.strip():
            raise InvalidRequest("prompt text must not be empty", code="validation_error")
        follower = self._followers.get(session_id)
        async with follower.edge_lock if follower is not None else contextlib.nullcontext():
            sealed: dict[str, Any] = {}
            if follower is not None and record.status in (STARTING, IDLE) and follower.accepted_turn <= record.turns:
                await self._mark(record)  # what changed while the session was idle is no turn's
                sealed["sealed"] = record.turns  # the runner need not wait for this edge's own ``sealed``
            try:
                result = await self._control(record, "prompt", text=text, **sealed)
                queued, turn = result.get("queued"), result.get("turn")
                if not (_whole(queued) and _whole(turn)):
                    raise AgentUnavailable(f"agent session {record.id} answered prompt with {result!r:.200}")
            except AgentUnavailable:
                # The answer was lost or malformed, but the runner may have queued the prompt all the same: the turn
                # before it ending must then say sealed (one turn expected too many costs nothing).
                self._turns.expect_turn(sandbox_id, session_id)
                raise
            self._turns.expect_turn(sandbox_id, session_id)
            if follower is not None:
                follower.accepted_turn = max(follower.accepted_turn, turn)
        return {"queued": queued, "turn": turn}

    async def interrupt(self, who: Principal, sandbox_id: str, session_id: str) -> dict[str, Any]:
        """Abort the running turn; ``who`` (its key's or token's id) is named as who denied what was pending."""
        record = await self._live(who, sandbox_id, session_id, Access.PROMPT)
        result = await self._control(record, "interrupt", by=who.id)
        turn = result.get("turn")
        return {"interrupted": bool(result.get("interrupted")), "turn": turn if _whole(turn) else None}

    async def answer_permission(
        self, who: Principal, sandbox_id: str, session_id: str, request_id: str, answer: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer a ``permission_requested`` of the session. The runner holds what is pending and takes the first
        answer only: a second is ``AlreadyResolved``, an id it never asked ``PermissionNotFound``. The id of
        ``who`` (a key's, or a token's) is written into ``permission_resolved`` as ``by``."""
        by = who.id
        record = await self._live(who, sandbox_id, session_id, Access.APPROVE)
        result = await self._control(record, "permission", request_id=request_id, **answer, by=by)
        decision = result.get("decision")
        if result.get("request_id") != request_id or decision not in ("allow", "deny"):
            raise AgentUnavailable(f"agent session {record.id} answered permission with {result!r:.200}")
        return {"request_id": request_id, "decision": decision, "by": by}

    async def configure(
        self, who: Principal, sandbox_id: str, session_id: str, changes: dict[str, Any]
    ) -> SessionRecord:
        record = await self._live(who, sandbox_id, session_id, Access.PROMPT)
        if not changes:
            raise InvalidRequest("configure needs at least one field to change", code="validation_error")
        config = await self._control(record, "configure", **changes)
        effective = {k: v for k, v in config.items() if k in CONFIG_KEYS and is_setting(v)}
        record.config = {**record.config, **effective}
        await self._store.update(session_id, config=record.config)
        return await self._get(session_id)

    async def kill(
        self, who: Principal, sandbox_id: str, session_id: str, signum: int = signal.SIGTERM
    ) -> SessionRecord:
        record = await self._live(who, sandbox_id, session_id, Access.OWN)
        if record.process_id is not None:
            with contextlib.suppress(GuestUnavailable, SandboxNotRunning):
                await self._execs.signal(SYSTEM, sandbox_id, record.process_id, signum)
        follower = self._followers.get(session_id)
        if follower is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(follower.exited.wait(), KILL_WAIT)
            if not follower.exited.is_set() and record.process_id is not None:
                with contextlib.suppress(GuestUnavailable, SandboxNotRunning):
                    await self._execs.signal(SYSTEM, sandbox_id, record.process_id, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(follower.exited.wait(), KILL_WAIT)
        return await self._get(session_id)


def _no_session(session_id: str, sandbox_id: str | None) -> str:
    return f"no agent session {session_id!r}" + (f" in sandbox {sandbox_id}" if sandbox_id else "")


def _exit_line(record: SessionRecord, exit_code: int) -> bytes:
    event = {
        "seq": record.last_seq + 1,
        "session_id": record.id,
        "type": "exit",
        "time": utc_now(),
        "exit_code": exit_code,
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _whole(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value < MAX_SEQ


def _reply_of(record: SessionRecord, op: str, line: bytes) -> dict[str, Any]:
    """The runner's answer to ``op``: its result, or its refusal as an ``InvalidRequest``. The runner lives in
    the sandbox, so anything but a well-formed answer is the session being unavailable, never a server error."""
    try:
        reply = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        reply = None
    if not isinstance(reply, dict):
        raise AgentUnavailable(f"agent session {record.id} answered {op} with something that is not a reply")
    if not reply.get("ok"):
        error = reply["error"] if isinstance(reply.get("error"), dict) else {}
        message, code = str(error.get("message", f"{op} refused"))[:1000], str(error.get("code", "refused"))[:100]
        refusal = _RUNNER_ERRORS.get(code)
        if refusal is not None:
            raise refusal(message)
        raise InvalidRequest(message, code=code if code in _RUNNER_CODES else "refused")
    result = reply.get("result")
    return result if isinstance(result, dict) else {}


# What the runner may answer a refused command with (each becomes the API's error code as it is), and the codes
# that are refusals of a class of their own.
_RUNNER_CODES = {"invalid_argument", "bad_request", "unknown_op", "stopping", "too_large", "internal"}
_RUNNER_ERRORS: dict[str, type[CoveServiceError]] = {
    "permission_not_found": PermissionNotFound,
    "already_resolved": AlreadyResolved,
}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# A \u escape of a surrogate: a pair decodes to one character, a lone one to a string no UTF-8 encoder takes
# (every reply carrying it would fail). The runner writes raw UTF-8, so such escapes are rare: checked whole.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _events_of(session_id: str, lines: builtins.list[bytes]) -> builtins.list[tuple[str, dict[str, Any] | None]]:
    """Each line as (its text, the event it is or None): pure, so it may run in a worker thread."""
    parsed: list[tuple[str, dict[str, Any] | None]] = []
    for line in lines:
        event = _event_of(session_id, line)
        parsed.append((line.decode() if event is not None else "", event))
    return parsed


# Deeper than this, an event could not be served back (the API's serializer gives up below 300 levels).
MAX_EVENT_DEPTH = 64


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (iteratively: the value is the sandbox's)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_EVENT_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def _event_of(session_id: str, line: bytes) -> dict[str, Any] | None:
    """The journal line as an event of this session, or None: a JSON object (strict JSON: no NaN, no lone
    surrogate, no nesting deeper than ``MAX_EVENT_DEPTH``) with an integer ``seq``, a string ``type`` and this
    session's id. The journal is the sandbox's to write: a line naming another session, or that could not be
    sent back out as JSON, must not reach the log. A bare CR (JSON whitespace, never in a string) would end a
    line of an SSE stream half-way: a line with one is no event either."""
    if b"\r" in line:
        return None
    try:
        event = json.loads(line, parse_constant=_refuse_constant)
        if b"\\u" in line and _SURROGATE.search(line):  # rare: then check the decoded text really encodes
            json.dumps(event, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError included; RecursionError: nested too deep
        return None
    if (
        not isinstance(event, dict)
        or type(event.get("seq")) is not int
        or not 0 < event["seq"] < MAX_SEQ
        or not isinstance(event.get("type"), str)
        or event.get("session_id") != session_id
    ):
        return None
    if line.count(b"[") + line.count(b"{") > MAX_EVENT_DEPTH and _depth(event) > MAX_EVENT_DEPTH:
        return None
    return event


def _transcript_name(claude_session_id: str) -> str:
    """The file Claude Code keeps a conversation in (in its project's directory)."""
    return f"{claude_session_id}.jsonl"

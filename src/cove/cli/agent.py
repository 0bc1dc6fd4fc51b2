"""``cove agent start|attach|prompt|interrupt|approve|deny|configure|ls|info|diff|kill`` — readable events (text as it
streams), or ``--json`` for raw; ``--ask`` answers the agent's permission requests at the terminal."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cove.cli._output import Column, JsonOpt, command, details, emit, emit_json, note, table
from cove.cli.sandbox import SandboxArg, ago
from cove.sdk import (
    AgentEvent,
    AgentSession,
    AgentSessionInfo,
    AlreadyResolved,
    EventPrinter,
    PermissionRequest,
    Sandbox,
    list_sessions,
)

app = typer.Typer(help="Run and steer Claude Code agents in sandboxes.", no_args_is_help=True)
SessionArg = Annotated[str, typer.Argument(metavar="SESSION", help="An agent session id (ses_…)")]

# The settings `configure` changes, as options, each with the SDK's name for it: `start` takes every one of
# them too (see _with_settings).
SETTINGS: dict[str, tuple[Any, str]] = {
    "model": (Annotated[str | None, typer.Option(help="Model name (default: the provider's)")], "model"),
    "system_prompt": (
        Annotated[str | None, typer.Option(help="Replaces Claude Code's system prompt")],
        "system_prompt",
    ),
    "allowed_tool": (
        Annotated[list[str] | None, typer.Option(help="A tool the agent may use; repeatable")],
        "allowed_tools",
    ),
    "disallowed_tool": (
        Annotated[list[str] | None, typer.Option(help="A tool the agent may not use; repeatable")],
        "disallowed_tools",
    ),
    "permission_mode": (
        Annotated[
            str | None,
            typer.Option(
                help="default, acceptEdits, plan, bypassPermissions (the default: the sandbox is the boundary)…"
            ),
        ],
        "permission_mode",
    ),
    "max_turns": (Annotated[int | None, typer.Option(help="Most model round trips per prompt")], "max_turns"),
    "cwd": (
        Annotated[str | None, typer.Option(help="The agent's working directory; it must exist (default /workspace)")],
        "cwd",
    ),
    "mcp_servers": (
        Annotated[str | None, typer.Option(help='MCP servers as JSON: {"name": {"command": "…"}}')],
        "mcp_servers",
    ),
    "permission_timeout_s": (
        Annotated[float | None, typer.Option(help="Deny a permission request no one answers within this many s")],
        "permission_timeout_s",
    ),
}
AskOpt = Annotated[
    bool,
    typer.Option(
        "--ask", help="Answer the agent's permission requests here: y, n or always (start: permission mode default)"
    ),
]


def _with_settings(function: Callable[..., None]) -> Callable[..., None]:
    """A command with an option for every setting in SETTINGS; the command itself gets those given as one dict,
    ``settings``, under the SDK's names (``--mcp-servers`` parsed, so that a typo is caught here)."""
    own = [p for p in inspect.signature(function, eval_str=True).parameters.values() if p.name != "settings"]
    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hint)
        for name, (hint, _sdk_name) in SETTINGS.items()
    ]

    @functools.wraps(function)
    def run(**given: Any) -> None:
        settings = {SETTINGS[name][1]: given.pop(name) for name in SETTINGS}
        if settings["mcp_servers"] is not None:
            try:
                settings["mcp_servers"] = json.loads(settings["mcp_servers"])
            except ValueError as exc:
                raise typer.BadParameter(f"not JSON: {exc}", param_hint="--mcp-servers") from None
        function(**given, settings={name: value for name, value in settings.items() if value is not None})

    del run.__wrapped__  # its signature is the one below, not the function's
    run.__signature__ = inspect.Signature([*own, *options])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in [*own, *options]}
    return run


def _printer(sandbox: Sandbox, as_json: bool) -> Callable[[AgentEvent], None]:
    if as_json:
        return lambda event: print(json.dumps(event.data), flush=True)
    return EventPrinter(simulated=sandbox.agent.model_info().upstream == "simulator")


def _follow(
    session: AgentSession, show: Callable[[AgentEvent], None], turn: int | None, ask: bool = False
) -> AgentEvent | None:
    """Print events until turn ``turn`` completes (every turn, with ``None``) or the session exits; the last
    event printed. With ``ask``, each permission request still pending when it is printed is asked about."""
    last = None
    for last in session.events():
        show(last)
        if ask and last.type == "permission_requested":
            pending = {request.request_id: request for request in session.pending_permissions}
            if str(last.get("request_id")) in pending:
                ask = _ask(session, pending[str(last.get("request_id"))])
        if last.type == "turn_complete" and turn is not None and int(last.get("turn", 0)) >= turn:
            break
    return last


_ANSWERS = {"y": "allow", "yes": "allow", "n": "deny", "no": "deny", "a": "always", "always": "always"}


def _ask(session: AgentSession, request: PermissionRequest) -> bool:
    """Ask at the terminal and answer; False once there is no one to ask (stdin ended): later requests wait for
    an answer from elsewhere (``cove agent approve``)."""
    while True:
        try:
            reply = input(f"allow {request.tool_name}? [y]es, [n]o, [a]lways: ").strip().lower()
        except EOFError:
            note(f"no answer given; {request.request_id} waits for `cove agent approve|deny`")
            return False
        if reply in _ANSWERS:
            break
    try:
        if _ANSWERS[reply] == "deny":
            session.deny(request.request_id)
        else:
            session.approve(request.request_id, remember=_ANSWERS[reply] == "always")
    except AlreadyResolved as exc:
        note(f"{request.request_id} was decided meanwhile: {exc.message}")
    return True


def _exit_unless_completed(last: AgentEvent | None) -> None:
    """Exit 1 when the turn followed did not complete: it failed, or the session ended first."""
    if last is not None and last.type == "exit":
        note(f"the session exited (exit code {last.get('exit_code')}) before the turn completed")
        raise typer.Exit(1)
    if last is not None and last.get("is_error"):
        note("the turn failed")
        raise typer.Exit(1)


def _watch(
    sandbox_id: str, session: AgentSession, what: str, watching: Callable[[], AgentEvent | None]
) -> AgentEvent | None:
    """Run ``watching``; on Ctrl-C, say that the session goes on and how to find it again (exit 130)."""
    try:
        return watching()
    except KeyboardInterrupt:
        note(
            f"{what}; session {session.session_id} keeps running. Follow it again with "
            f"`cove agent attach {sandbox_id} {session.session_id}`, "
            f"stop it with `cove agent kill {sandbox_id} {session.session_id}`."
        )
        raise typer.Exit(130) from None
    finally:
        session.close()


@command(app)
@_with_settings
def start(
    sandbox_id: SandboxArg,
    prompt: Annotated[
        str | None, typer.Argument(metavar="[PROMPT]", help="The first prompt; without one the session waits idle")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="A conversation id to continue (from a turn's end)")] = None,
    fork: Annotated[bool, typer.Option(help="With --resume: branch the conversation instead")] = False,
    follow: Annotated[bool, typer.Option(help="Print the events until the first turn completes")] = True,
    ask: AskOpt = False,
    as_json: JsonOpt = False,
    *,
    settings: dict[str, Any],
) -> None:
    """Start an agent session. Prints its id first, then its events until the first turn completes; Ctrl-C
    stops printing and leaves the session running. With --no-follow, prints only the id."""
    sandbox = Sandbox.connect(sandbox_id)
    if ask:
        settings.setdefault("permission_mode", "default")
    session = sandbox.agent.start(prompt, resume=resume, fork=fork, **settings)
    if not (follow and prompt):
        session.close()
        emit(session.info, as_json, session.session_id)
        return
    show = _printer(sandbox, as_json)
    if not as_json:
        print(f"session {session.session_id} (Ctrl-C stops following; the session keeps running)", flush=True)
    last = _watch(sandbox_id, session, "stopped following", lambda: _follow(session, show, turn=1, ask=ask))
    if not as_json and session.claude_session_id:
        conversation = session.claude_session_id
        note(f"conversation {conversation}: continue it in a new session with --resume {conversation}")
    _exit_unless_completed(last)


@command(app)
def attach(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    after: Annotated[int, typer.Option(help="Replay only the events after this seq")] = 0,
    ask: AskOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay a session's events after --after, then follow it live until it exits (Ctrl-C detaches)."""
    sandbox = Sandbox.connect(sandbox_id)
    session = sandbox.agent.attach(session_id, after=after)
    show = _printer(sandbox, as_json)
    following = _watch(sandbox_id, session, "detached", lambda: _follow(session, show, turn=None, ask=ask))
    if following is None and not as_json:
        ended = session.info
        note(f"no events after seq {after}: session {session_id} is {ended.status} (last seq {ended.last_seq})")


@command(app)
def prompt(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    text: Annotated[str, typer.Argument(help="The prompt; queued if a turn is running")],
    wait: Annotated[bool, typer.Option(help="Print the events until this turn completes")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Send a follow-up prompt (queued if a turn is running)."""
    sandbox = Sandbox.connect(sandbox_id)
    info = sandbox.agent.get(session_id)
    session = sandbox.agent.attach(session_id, after=info.last_seq)
    accepted = session.send_prompt(text)
    if wait:
        show = _printer(sandbox, as_json)
        last = _watch(sandbox_id, session, "stopped following", lambda: _follow(session, show, turn=accepted.turn))
        _exit_unless_completed(last)
        return
    session.close()
    emit(accepted, as_json, f"queued as turn {accepted.turn} ({accepted.queued} before it)")


@command(app)
def interrupt(sandbox_id: SandboxArg, session_id: SessionArg, as_json: JsonOpt = False) -> None:
    """Abort the running turn at once (prompts queued behind it still run)."""
    result = Sandbox.connect(sandbox_id).agent.session(session_id).interrupt()
    emit(result, as_json, f"interrupted turn {result.turn}" if result.interrupted else "nothing was running")


RequestArg = Annotated[str, typer.Argument(metavar="REQUEST", help="A permission request id (perm_…)")]


@command(app)
def approve(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    request_id: RequestArg,
    always: Annotated[bool, typer.Option(help="Apply Claude Code's suggested rule, so it asks no more")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Allow a tool the agent is waiting for (its permission_requested event names the request)."""
    resolved = Sandbox.connect(sandbox_id).agent.session(session_id).approve(request_id, remember=always)
    emit(resolved, as_json, f"allowed {request_id}")


@command(app)
def deny(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    request_id: RequestArg,
    message: Annotated[str | None, typer.Option(help="What the agent is told")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deny a tool the agent is waiting for; the agent is told why (--message) and carries on."""
    resolved = Sandbox.connect(sandbox_id).agent.session(session_id).deny(request_id, message)
    emit(resolved, as_json, f"denied {request_id}")


@command(app)
@_with_settings
def configure(
    sandbox_id: SandboxArg, session_id: SessionArg, as_json: JsonOpt = False, *, settings: dict[str, Any]
) -> None:
    """Change the session's settings from the next turn on (the conversation is kept)."""
    info = Sandbox.connect(sandbox_id).agent.session(session_id).configure(**settings)
    if as_json:
        emit_json(info)
    else:
        details(
            [
                (name, json.dumps(value) if isinstance(value, dict | list) else value)
                for name, value in info.config.items()
            ]
        )


def _cost(info: AgentSessionInfo) -> str:
    return f"${info.total_cost_usd:.4f}"


@command(app, "ls")
def list_agent_sessions(
    sandbox_id: Annotated[str | None, typer.Argument(metavar="[SANDBOX]", help="Only this sandbox's sessions")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List agent sessions (of every sandbox by default), ended ones included."""
    sessions = Sandbox.connect(sandbox_id).agent.list() if sandbox_id else list_sessions()
    if as_json:
        emit_json(sessions)
        return
    table(
        [
            Column("SESSION", id=True),
            Column("SANDBOX", id=True),
            Column("STATUS"),
            Column("TURNS"),
            Column("COST"),
            Column("CREATED"),
        ],
        [[s.session_id, s.sandbox_id, s.status, s.turns, _cost(s), ago(s.created_at)] for s in sessions],
    )


@command(app)
def info(sandbox_id: SandboxArg, session_id: SessionArg, as_json: JsonOpt = False) -> None:
    """Everything about one session: status, conversation id (for --resume), settings, usage."""
    session = Sandbox.connect(sandbox_id).agent.get(session_id)
    if as_json:
        emit_json(session)
        return
    error = session.error or {}
    details(
        [
            ("session", session.session_id),
            ("sandbox", session.sandbox_id),
            ("status", session.status),
            ("conversation", session.claude_session_id or "-"),
            ("turns", f"{session.turns} ({session.queued} queued)"),
            ("cost", _cost(session)),
            ("tokens", f"{session.usage.input_tokens} in, {session.usage.output_tokens} out"),
            *((name, value) for name, value in session.config.items() if value is not None),
            ("exit code", session.exit_code if session.exit_code is not None else "-"),
            ("last error", f"{error.get('code')}: {error.get('message')}" if error else "-"),
            ("last seq", session.last_seq),
        ]
    )


_MARKS = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R"}


@command(app)
def diff(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    turn: Annotated[int | None, typer.Argument(help="A turn number (default: the last that completed)")] = None,
    stat: Annotated[bool, typer.Option("--stat", help="Only the files, with their lines added and deleted")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What a turn changed under /workspace, as `git diff` shows it (binary and large files named, not shown).

    The output is a patch: `cove agent diff SBX SES 3 | git apply -R` undoes turn 3's text changes in a checkout.
    """
    session = Sandbox.connect(sandbox_id).agent.session(session_id)
    if not (stat or as_json):
        shown = 0
        for page in session.diff_pages(turn):  # printed as it comes: a diff may be big
            sys.stdout.write(page.diff)
            sys.stdout.flush()
            shown = page.total_files
        if not shown:
            note("the turn changed nothing under /workspace")
        return
    changes = session.diff(turn)
    if as_json:
        emit_json(changes)
        return
    table(
        [Column(""), Column("FILE"), Column("+"), Column("-"), Column("NOTE")],
        [
            [
                _MARKS[change.change],
                f"{change.old_path} → {change.path}" if change.old_path else change.path,
                change.additions,
                change.deletions,
                change.skipped or "",
            ]
            for change in changes.files
        ],
    )


@command(app)
def kill(
    sandbox_id: SandboxArg,
    session_id: SessionArg,
    signal: Annotated[str, typer.Option(help="SIGTERM (a clean exit) or SIGKILL")] = "SIGTERM",
    as_json: JsonOpt = False,
) -> None:
    """Stop an agent session; its events stay, and its conversation can be resumed in a new session."""
    info = Sandbox.connect(sandbox_id).agent.session(session_id).kill(signal)
    emit(info, as_json, f"{info.session_id} {info.status} (exit code {info.exit_code})")

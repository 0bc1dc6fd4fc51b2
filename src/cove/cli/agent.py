"""``cove agent start|attach|prompt|interrupt|configure|ls|kill`` — readable events, or ``--json`` for raw."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from cove.cli._output import emit_json, fail, table
from cove.sdk import AgentEvent, AgentSession, CoveError, Sandbox, format_event
from cove.sdk._sync_agent import list_sessions as list_all_sessions
from cove.wire import AgentSession as SessionInfo

app = typer.Typer(help="Run and steer Claude Code agents in sandboxes.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Raw events / JSON output")]


def _printer(as_json: bool) -> Callable[[AgentEvent], None]:
    def show(event: AgentEvent) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event.data) + "\n")
        elif text := format_event(event):
            print(text)
        sys.stdout.flush()

    return show


def _follow(session: AgentSession, until_exit: bool) -> None:
    """Print events until the current turn completes (or the session exits)."""
    for event in session.events():
        if event.type == "exit" or (not until_exit and event.type == "turn_complete" and _caught_up(session, event)):
            return


def _caught_up(session: AgentSession, event: AgentEvent) -> bool:
    info = session.refresh()
    return info.status != "running" and info.queued == 0 and int(event.get("turn", 0)) >= info.turns


@app.command()
def start(
    sandbox_id: str,
    prompt: Annotated[str | None, typer.Argument(help="First prompt; omit to start idle")] = None,
    model: Annotated[str | None, typer.Option(help="Model name")] = None,
    resume: Annotated[str | None, typer.Option(help="claude_session_id of a conversation to continue")] = None,
    fork: Annotated[bool, typer.Option(help="With --resume: branch instead of continuing")] = False,
    max_turns: Annotated[int | None, typer.Option(help="Maximum agentic turns per prompt")] = None,
    cwd: Annotated[str | None, typer.Option(help="Working directory in the sandbox")] = None,
    follow: Annotated[bool, typer.Option(help="Stream events until the turn completes")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Start an agent session; streams its events until the first turn completes."""
    try:
        sandbox = Sandbox.connect(sandbox_id)
        session = sandbox.agent.start(
            prompt,
            on_event=_printer(as_json) if follow else None,
            model=model,
            resume=resume,
            fork=fork,
            max_turns=max_turns,
            cwd=cwd,
        )
        if follow and prompt:
            session.wait()
        if not as_json:
            print(f"session {session.session_id}  conversation {session.claude_session_id or '(starting)'}")
        elif not follow:
            emit_json(session.info)
        session.close()
    except CoveError as exc:
        fail(exc)


@app.command()
def attach(
    sandbox_id: str,
    session_id: str,
    after: Annotated[int, typer.Option(help="Replay events after this seq")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Replay a session's events after --after, then follow it live until it exits (Ctrl-C to detach)."""
    try:
        session = Sandbox.connect(sandbox_id).agent.attach(session_id, on_event=_printer(as_json), after=after)
        _follow(session, until_exit=True)
    except CoveError as exc:
        fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def prompt(
    sandbox_id: str,
    session_id: str,
    text: str,
    wait: Annotated[bool, typer.Option(help="Stream events until this turn completes")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Send a follow-up prompt (queued if a turn is running)."""
    try:
        sandbox = Sandbox.connect(sandbox_id)
        info = sandbox.agent.get(session_id)
        session = sandbox.agent.attach(session_id, on_event=_printer(as_json) if wait else None, after=info.last_seq)
        accepted = session.send_prompt(text)
        if wait:
            session.wait()
        elif as_json:
            emit_json(accepted)
        else:
            print(f"queued as turn {accepted.turn} ({accepted.queued} before it)")
        session.close()
    except CoveError as exc:
        fail(exc)


@app.command()
def interrupt(sandbox_id: str, session_id: str, as_json: JsonOpt = False) -> None:
    """Abort the running turn at once."""
    try:
        sandbox = Sandbox.connect(sandbox_id)
        result = sandbox.agent.session(session_id).interrupt()
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(result)
    else:
        print(f"interrupted turn {result.turn}" if result.interrupted else "nothing was running")


@app.command()
def configure(
    sandbox_id: str,
    session_id: str,
    model: Annotated[str | None, typer.Option()] = None,
    max_turns: Annotated[int | None, typer.Option()] = None,
    cwd: Annotated[str | None, typer.Option()] = None,
    system_prompt: Annotated[str | None, typer.Option()] = None,
    permission_mode: Annotated[str | None, typer.Option()] = None,
    allowed_tool: Annotated[list[str] | None, typer.Option(help="Repeatable")] = None,
    disallowed_tool: Annotated[list[str] | None, typer.Option(help="Repeatable")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the session's settings from the next turn on (the conversation is kept)."""
    changes = {
        "model": model,
        "max_turns": max_turns,
        "cwd": cwd,
        "system_prompt": system_prompt,
        "permission_mode": permission_mode,
        "allowed_tools": allowed_tool,
        "disallowed_tools": disallowed_tool,
    }
    try:
        sandbox = Sandbox.connect(sandbox_id)
        info = sandbox.agent.session(session_id).configure(**{k: v for k, v in changes.items() if v is not None})
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(info)
    else:
        print(json.dumps(info.config, indent=2))


def _rows(sessions: list[SessionInfo]) -> list[list[object]]:
    return [
        [s.session_id, s.sandbox_id, s.status, s.turns, s.claude_session_id or "", f"${s.total_cost_usd:.4f}"]
        for s in sessions
    ]


@app.command("ls")
def list_sessions(
    sandbox_id: Annotated[str | None, typer.Argument(help="Only this sandbox's sessions")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List agent sessions (all sandboxes by default)."""
    try:
        sessions = Sandbox.connect(sandbox_id).agent.list() if sandbox_id else list_all_sessions()
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(sessions)
    else:
        table(["SESSION", "SANDBOX", "STATUS", "TURNS", "CONVERSATION", "COST"], _rows(sessions))


@app.command()
def kill(
    sandbox_id: str,
    session_id: str,
    signal: Annotated[str, typer.Option(help="SIGTERM (clean exit) or SIGKILL")] = "SIGTERM",
    as_json: JsonOpt = False,
) -> None:
    """Stop an agent session."""
    try:
        sandbox = Sandbox.connect(sandbox_id)
        info = sandbox.agent.session(session_id).kill(signal)
    except CoveError as exc:
        fail(exc)
    if as_json:
        emit_json(info)
    else:
        print(f"{info.session_id} {info.status} (exit code {info.exit_code})")

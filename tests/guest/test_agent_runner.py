"""The agent runner, end to end: the real runner process and the real Claude Code CLI against the simulator.

Each test starts ``python -m cove.guest.agent_runner`` on a fresh session dir (outside any sandbox, so the
CLI gets ``IS_SANDBOX=1`` to accept bypassPermissions as root), drives it through ``control.sock`` and follows
``events.jsonl``. Every event read is validated against ``docs/events.schema.json`` and checked for gap-free
seqs. Waiting is always "tail the journal until an event matches, or time out" — never a bare sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from cove.guest.agent_transcripts import project_dir
from cove.guest.journal import Journal, read_events, read_last_seq
from cove.simulator.runner import BackgroundSimulator, run_in_background

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "events.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)

Event = dict[str, Any]


# --------------------------------------------------------------------------- the simulator, one per module


class Simulator:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.base_url}/_sim/requests", timeout=10) as response:
            records: list[dict[str, Any]] = json.load(response)
        return records

    def request_with(self, marker: str) -> dict[str, Any]:
        matches = [r for r in self.requests() if marker in (r.get("last_user_text") or "")]
        assert matches, f"the simulator received no request whose prompt holds {marker!r}"
        return matches[-1]


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    """The model simulator on a free port, served by its own event loop in a thread."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, BackgroundSimulator] = {}

    async def serve() -> None:
        holder["sim"] = await run_in_background(port=0)
        started.set()
        await holder["sim"].task

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(15), "simulator did not start"
    yield Simulator(holder["sim"].base_url)
    asyncio.run_coroutine_threadsafe(holder["sim"].stop(), loop).result(15)
    thread.join(15)
    loop.close()


# --------------------------------------------------------------------------- a runner process


class Runner:
    """One runner process plus helpers to steer it and to follow its journal."""

    def __init__(self, tmp: Path, home: Path, sim: Simulator, **config: Any) -> None:
        self.dir = tmp / f"session-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self.session_id = f"ses_{uuid.uuid4().hex[:12]}"
        config.setdefault("cwd", str(tmp / "work"))
        Path(config["cwd"]).mkdir(parents=True, exist_ok=True)
        self.config = {"session_id": self.session_id, **config}
        (self.dir / "config.json").write_text(json.dumps(self.config))
        self.journal = self.dir / "events.jsonl"
        self.sock = self.dir / "control.sock"
        self.events: list[Event] = []
        self._offset = 0
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
        env.update(
            HOME=str(home),
            IS_SANDBOX="1",
            ANTHROPIC_BASE_URL=sim.base_url,
            ANTHROPIC_API_KEY="sk-test-session-token",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        )
        self._log = open(self.dir / "runner.log", "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cove.guest.agent_runner", str(self.dir)],
            env=env,
            cwd=config["cwd"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as the supervisor starts it
        )

    # ---- journal

    def _pull(self) -> list[Event]:
        new, self._offset = read_events(self.journal, self._offset)
        for event in new:
            errors = sorted(VALIDATOR.iter_errors(event), key=str)
            assert not errors, f"event {event} does not match the schema: {[e.message for e in errors]}"
            assert event["seq"] == len(self.events) + 1, f"seq gap before {event}"
            assert event["session_id"] == self.session_id
            assert event["time"].endswith("Z")
            datetime.fromisoformat(event["time"])
            self.events.append(event)
        return new

    def wait_for(self, match: Callable[[Event], bool], timeout: float = 30, after: int = 0) -> Event:
        """The first event with seq > ``after`` that matches, tailing the journal until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self._pull()
            for event in self.events:
                if event["seq"] > after and match(event):
                    return event
            if time.monotonic() > deadline:
                log = (self.dir / "runner.log").read_bytes().decode(errors="replace")[-3000:]
                raise AssertionError(f"no matching event within {timeout}s; got {self.events}\n{log}")
            if self.proc.poll() is not None and not self._pull():
                raise AssertionError(f"runner exited ({self.proc.returncode}) without it; got {self.events}")
            time.sleep(0.02)

    def wait_type(self, type_: str, timeout: float = 30, after: int = 0, **fields: Any) -> Event:
        return self.wait_for(
            lambda e: e["type"] == type_ and all(e.get(k) == v for k, v in fields.items()), timeout, after
        )

    def of_type(self, type_: str) -> list[Event]:
        self._pull()
        return [e for e in self.events if e["type"] == type_]

    def texts(self) -> list[str]:
        """The text blocks of every assistant event so far."""
        return [block["text"] for e in self.of_type("assistant") for block in e["content"] if block["type"] == "text"]

    # ---- control socket

    def connect(self, timeout: float = 30) -> Control:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return Control(self.sock)
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.02)

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        with self.connect() as control:
            return control.request(op, **params)

    def ok(self, op: str, **params: Any) -> dict[str, Any]:
        response = self.request(op, **params)
        assert response["ok"], response
        result: dict[str, Any] = response["result"]
        return result

    def until(self, holds: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        """The runner's ``status`` once ``holds`` is true of it, asking again until ``timeout``."""
        deadline = time.monotonic() + timeout
        while not holds(status := self.ok("status")):
            assert time.monotonic() < deadline, f"the runner's status never held; last {status}"
            time.sleep(0.02)
        return status

    def run_turn(self, text: str, timeout: float = 30) -> Event:
        """Send a prompt and wait for its turn_complete."""
        turn = self.ok("prompt", text=text)["turn"]
        return self.wait_type("turn_complete", timeout, turn=turn)

    # ---- shutdown

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM; returns the exit code after checking the journal ends with ``exit``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.finish(timeout)
        assert code == 0
        return code

    def finish(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout)
        self._log.close()
        self._pull()
        assert self.events, "empty journal"
        assert self.events[-1]["type"] == "exit", self.events[-1]
        assert self.events[-1]["exit_code"] == code
        assert [e["seq"] for e in self.events] == list(range(1, len(self.events) + 1))
        assert not self.sock.exists()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()


class Control:
    """One connection to control.sock; several requests may share it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rwb")
        self._next = 0

    def send_raw(self, line: bytes) -> dict[str, Any]:
        self.file.write(line)
        self.file.flush()
        reply = self.file.readline()
        assert reply.endswith(b"\n"), reply
        response: dict[str, Any] = json.loads(reply)
        return response

    def request(self, op: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        response = self.send_raw(json.dumps({"id": self._next, "op": op, **params}).encode() + b"\n")
        assert response["id"] == self._next
        return response

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def start(tmp_path: Path, home: Path, simulator: Simulator) -> Iterator[Callable[..., Runner]]:
    runners: list[Runner] = []

    def _start(**config: Any) -> Runner:
        runner = Runner(tmp_path, home, simulator, **config)
        runners.append(runner)
        return runner

    yield _start
    for runner in runners:
        runner.kill()


def _transcript(home: Path, cwd: str, claude_session_id: str) -> Path:
    return home / ".claude" / "projects" / project_dir(cwd).name / f"{claude_session_id}.jsonl"


# --------------------------------------------------------------------------- tests


def test_prompt_runs_a_turn_and_the_next_turn_remembers_it(start: Callable[..., Runner]) -> None:
    runner = start(prompt="@say hello from turn one")
    ready = runner.wait_type("ready")
    assert ready["config"]["permission_mode"] == "bypassPermissions"
    sid = ready["claude_session_id"]
    first = runner.wait_type("turn_complete", turn=1)
    kinds = [e["type"] for e in runner.events if e["type"] not in ("stderr",)]
    assert kinds[:2] == ["ready", "turn_started"]
    assert kinds[kinds.index("turn_started") :] == [
        "turn_started",
        "system",  # init
        "system",  # status: requesting (the model call)
        "text_delta",
        "assistant",
        "result",
        "turn_complete",
    ]
    assert runner.of_type("turn_started")[0]["turn"] == 1
    assert runner.of_type("system")[0]["subtype"] == "init"
    assert runner.of_type("system")[0]["data"]["session_id"] == sid
    assert "hello from turn one" in runner.texts()[-1]
    result = runner.of_type("result")[0]
    assert result["claude_session_id"] == sid and result["is_error"] is False
    assert first["claude_session_id"] == sid and first["is_error"] is False
    assert first["usage"]["input_tokens"] > 0 and first["cost_usd"] >= 0

    second = runner.run_turn("@recall")
    assert "hello from turn one" in runner.texts()[-1]
    assert second["total_usage"]["input_tokens"] == (first["usage"]["input_tokens"] + second["usage"]["input_tokens"])
    assert second["total_cost_usd"] == pytest.approx(first["cost_usd"] + second["cost_usd"])
    assert runner.ok("status") == {
        "state": "idle",
        "turn": 2,
        "queued": 0,
        "claude_session_id": sid,
        "awaiting_seal": None,
    }
    runner.stop()


def test_prompts_sent_during_a_turn_are_queued_in_order(start: Callable[..., Runner]) -> None:
    runner = start()
    runner.wait_type("ready")
    with runner.connect() as control:
        assert control.request("prompt", text="@slow 1 first")["result"] == {"queued": 0, "turn": 1}
        assert control.request("prompt", text="@say second")["result"] == {"queued": 1, "turn": 2}
        assert control.request("prompt", text="@say third")["result"] == {"queued": 2, "turn": 3}
        status = control.request("status")["result"]
    assert status["queued"] >= 1 and status["state"] in ("starting", "idle", "running")
    runner.wait_type("turn_complete", turn=3)
    started = runner.of_type("turn_started")
    assert [(e["turn"], e["prompt"]) for e in started] == [
        (1, "@slow 1 first"),
        (2, "@say second"),
        (3, "@say third"),
    ]
    # One turn at a time: each turn_started comes after the previous turn_complete.
    order = [(e["type"], e.get("turn")) for e in runner.events if e["type"] in ("turn_started", "turn_complete")]
    assert order == [(t, n) for n in (1, 2, 3) for t in ("turn_started", "turn_complete")]
    assert [t.strip() for t in runner.texts()] == ["first", "second", "third"]
    runner.stop()


def test_interrupt_aborts_the_running_turn_and_keeps_the_queue(
    start: Callable[..., Runner], simulator: Simulator
) -> None:
    runner = start()
    runner.wait_type("ready")
    marker = f"marker-{uuid.uuid4().hex}"
    runner.ok("prompt", text=f"@slow 20 this answer takes twenty seconds\n{marker}")
    runner.wait_type("turn_started", turn=1)
    # Interrupt only once the model call is under way (the simulator is streaming its slow answer).
    deadline = time.monotonic() + 30
    while not any(marker in (r.get("last_user_text") or "") for r in simulator.requests()):
        assert time.monotonic() < deadline, "the slow prompt never reached the simulator"
        time.sleep(0.02)
    assert runner.ok("prompt", text="@say queued behind the slow one") == {"queued": 1, "turn": 2}
    t0 = time.monotonic()
    assert runner.ok("interrupt") == {"interrupted": True, "turn": 1}
    interrupted = runner.wait_type("interrupted", timeout=1, turn=1)
    assert time.monotonic() - t0 < 1.0
    done = runner.wait_type("turn_complete", timeout=1, turn=1)
    assert done["interrupted"] is True and done["seq"] == interrupted["seq"] + 1
    # The queued prompt runs next, and the session is usable afterwards.
    runner.wait_type("turn_complete", turn=2)
    assert "queued behind the slow one" in runner.texts()[-1]
    runner.run_turn("@say still alive")
    assert "still alive" in runner.texts()[-1]
    runner.stop()


def test_interrupt_while_idle_does_nothing(start: Callable[..., Runner]) -> None:
    runner = start()
    runner.wait_type("ready")
    assert runner.ok("interrupt") == {"interrupted": False}
    assert not runner.of_type("interrupted")
    runner.stop()


def test_configure_model_applies_to_the_next_request(start: Callable[..., Runner], simulator: Simulator) -> None:
    runner = start(model="sim-model-one")
    sid = runner.wait_type("ready")["claude_session_id"]
    runner.run_turn("@model first")
    assert "Model: sim-model-one" in runner.texts()[-1]
    config = runner.ok("configure", model="sim-model-two")
    assert config["model"] == "sim-model-two"
    configured = runner.wait_type("configured")
    assert configured["changes"] == {"model": "sim-model-two"} and configured["config"] == config
    marker = f"marker-{uuid.uuid4().hex}"
    runner.run_turn(f"@model\n{marker}")
    assert "Model: sim-model-two" in runner.texts()[-1]
    assert simulator.request_with(marker)["model"] == "sim-model-two"
    assert runner.ok("status")["claude_session_id"] == sid
    runner.stop()


def test_configure_cwd_max_turns_and_system_prompt_keep_the_conversation(
    start: Callable[..., Runner], simulator: Simulator, tmp_path: Path
) -> None:
    runner = start()
    sid = runner.wait_type("ready")["claude_session_id"]
    runner.run_turn("@say the secret word is heron")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = runner.ok("configure", cwd=str(elsewhere), max_turns=7, system_prompt="You are the COVE-TEST agent.")
    assert (config["cwd"], config["max_turns"]) == (str(elsewhere), 7)
    marker = f"marker-{uuid.uuid4().hex}"
    done = runner.run_turn(f"@recall\n{marker}")
    assert "the secret word is heron" in runner.texts()[-1]
    assert done["claude_session_id"] == sid
    seen = simulator.request_with(marker)
    # The CLI tells the model "Primary working directory: <new> (was <old>)".
    assert (seen["cwd"] or "").startswith(str(elsewhere))
    assert "COVE-TEST" in (seen["system"] or "")
    # A refused change leaves everything as it was.
    refused = runner.request("configure", cwd=str(tmp_path / "missing"))
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_argument"
    refused = runner.request("configure", colour="blue")
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_argument"
    assert runner.ok("configure")["cwd"] == str(elsewhere)
    runner.stop()


def test_resume_continues_the_conversation_in_a_new_runner(start: Callable[..., Runner], home: Path) -> None:
    first = start(prompt="@say remember the albatross")
    sid = first.wait_type("ready")["claude_session_id"]
    first.wait_type("turn_complete", turn=1)
    first.stop()
    first_total = first.of_type("result")[-1]["total_cost_usd"]

    # Resumed from another cwd: the runner puts the transcript where the CLI will look for it.
    second = start(resume=sid, prompt="@recall", cwd=str(Path(first.config["cwd"]).parent / "other"))
    assert second.wait_type("ready")["claude_session_id"] == sid
    done = second.wait_type("turn_complete", turn=1)
    assert "remember the albatross" in second.texts()[-1]
    assert done["claude_session_id"] == sid
    # The CLI's total covers the whole conversation (restored on resume); the turn's cost is its own share.
    assert done["cost_usd"] == pytest.approx(second.of_type("result")[-1]["total_cost_usd"] - first_total)
    assert done["total_cost_usd"] == pytest.approx(done["cost_usd"])
    assert _transcript(home, second.config["cwd"], sid).is_file()
    second.stop()


def test_resume_of_an_unknown_conversation_fails_clearly(start: Callable[..., Runner]) -> None:
    runner = start(resume=str(uuid.uuid4()), prompt="@say must never run")
    error = runner.wait_type("error", code="resume_not_found")
    assert "not starting a new conversation" in error["message"]
    assert runner.finish() == 3
    assert [e["type"] for e in runner.events] == ["error", "exit"]


def test_fork_branches_and_leaves_the_original_unchanged(start: Callable[..., Runner], home: Path) -> None:
    first = start(prompt="@say the original branch")
    sid = first.wait_type("ready")["claude_session_id"]
    first.wait_type("turn_complete", turn=1)
    first.stop()
    original = _transcript(home, first.config["cwd"], sid)
    before = hashlib.sha256(original.read_bytes()).hexdigest()

    fork = start(resume=sid, fork=True, prompt="@recall")
    fork_sid = fork.wait_type("ready")["claude_session_id"]
    assert fork_sid != sid
    done = fork.wait_type("turn_complete", turn=1)
    assert done["claude_session_id"] == fork_sid
    assert "the original branch" in fork.texts()[-1]
    fork.stop()
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before
    assert _transcript(home, fork.config["cwd"], fork_sid).is_file()


def test_a_failed_model_call_ends_the_turn_with_an_error(start: Callable[..., Runner]) -> None:
    runner = start(prompt="@fail 400 invalid_request_error simulated breakage")
    failed = runner.wait_type("turn_complete", turn=1)
    assert failed["is_error"] is True
    assert runner.of_type("result")[-1]["is_error"] is True
    runner.run_turn("@say recovered")
    assert "recovered" in runner.texts()[-1]
    runner.stop()


def test_sigterm_mid_turn_exits_cleanly(start: Callable[..., Runner]) -> None:
    runner = start(prompt="@slow 20 too slow to finish")
    runner.wait_type("turn_started", turn=1)
    t0 = time.monotonic()
    runner.stop()
    assert time.monotonic() - t0 < 10
    assert runner.events[-1] == {**runner.events[-1], "type": "exit", "exit_code": 0}


def _children(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (the Claude Code CLI is the runner's child)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_a_stop_while_the_cli_restarts_is_a_clean_exit(start: Callable[..., Runner]) -> None:
    """Cove stops a session by signalling the runner's process group, which holds the Claude Code CLI too. A stop
    that lands while a configure restarts the CLI kills the CLI being started: that is the stop, not a failed
    start (it once ended sessions with ``start_failed: … exit code -15`` and exit code 1)."""
    runner = start()
    runner.wait_type("ready")
    first_cli = _children(runner.proc.pid)
    runner.ok("configure", max_turns=3)  # not changeable in place: the runner restarts the CLI
    deadline = time.monotonic() + 30
    while not _children(runner.proc.pid) - first_cli:
        assert time.monotonic() < deadline, "the runner did not start a new CLI"
        time.sleep(0.005)
    os.killpg(runner.proc.pid, signal.SIGTERM)  # as the supervisor signals a process: its whole group
    assert runner.finish() == 0
    assert runner.of_type("error") == []


def test_bad_control_requests_get_errors_and_the_connection_stays_usable(
    start: Callable[..., Runner],
) -> None:
    runner = start()
    runner.wait_type("ready")
    with runner.connect() as control:
        bad = control.send_raw(b"this is not json\n")
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request" and bad["id"] is None
        bad = control.send_raw(b"[1, 2]\n")
        assert bad["error"]["code"] == "bad_request"
        bad = control.request("dance")
        assert bad["ok"] is False and bad["error"]["code"] == "unknown_op"
        bad = control.request("prompt", text="")
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_argument"
        bad = control.request("configure", permission_mode="yolo")
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_argument"
        status = control.request("status")
        assert status["ok"] is True and status["result"]["state"] == "idle"
        # Another client at the same time.
        with runner.connect() as other:
            assert other.request("status")["ok"] is True
        assert control.request("status")["ok"] is True
    runner.stop()


# --------------------------------------------------------------------------- live text


def test_text_and_thinking_stream_as_coalesced_deltas_before_the_assistant_event(
    start: Callable[..., Runner],
) -> None:
    reply = " ".join(f"word{n}" for n in range(60))
    thinking = "weighing the words one by one " * 10
    runner = start(prompt=f"@slow 1.5 {reply}\n@think {thinking}")
    runner.wait_type("turn_complete", turn=1)
    [thinking_event, text_event] = runner.of_type("assistant")[-2:]
    [thinking_block] = thinking_event["content"]
    [text_block] = text_event["content"]
    for kind, block, whole in (
        ("thinking_delta", thinking_block, thinking_event),
        ("text_delta", text_block, text_event),
    ):
        deltas = runner.of_type(kind)
        assert len(deltas) > 3, deltas  # streamed over 1.5 s: many events, not one at the end
        assert {(d["message_id"], d["index"]) for d in deltas} == {(whole["message_id"], deltas[0]["index"])}
        assert "".join(d["text"] for d in deltas) == block.get("text", block.get("thinking"))
        assert all(d["seq"] < whole["seq"] for d in deltas)
        times = [datetime.fromisoformat(d["time"]) for d in deltas]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert min(gaps[:-1], default=1) > 0.025, gaps  # at most one event per ~30 ms (the block's end flushes)
    # The simulator sent a delta every 50 ms at most; a fast reply's deltas, all within a few ms, make one event.
    runner.run_turn("@say " + "fast " * 40)
    assert len([d for d in runner.of_type("text_delta") if d["seq"] > text_event["seq"]]) == 1
    assert not runner.of_type("system") or all(e["subtype"] != "thinking_tokens" for e in runner.of_type("system"))
    runner.stop()


# --------------------------------------------------------------------------- approvals


def _write_prompt(name: str) -> str:
    return f"@write {name}\ncontent of {name}\n@end\n@say wrote it"


def test_a_tool_that_needs_approval_waits_for_one_answer(start: Callable[..., Runner], tmp_path: Path) -> None:
    runner = start(permission_mode="default", prompt=_write_prompt("allowed.txt"))
    asked = runner.wait_type("permission_requested")
    assert asked["tool_name"] == "Write" and asked["input"]["file_path"].endswith("allowed.txt")
    assert asked["request_id"].startswith("perm_") and asked["tool_use_id"]
    assert not (tmp_path / "work" / "allowed.txt").exists()  # the turn waits
    assert runner.ok("status")["state"] == "running"
    answer = {"request_id": asked["request_id"], "decision": "allow", "by": "key_test"}
    assert runner.ok("permission", **answer) == {
        "request_id": asked["request_id"],
        "decision": "allow",
        "by": "key_test",
    }
    again = runner.request("permission", **{**answer, "decision": "deny"})
    assert again["ok"] is False and again["error"]["code"] == "already_resolved"
    unknown = runner.request("permission", **{**answer, "request_id": "perm_0000000000000000"})
    assert unknown["ok"] is False and unknown["error"]["code"] == "permission_not_found"
    bad = runner.request("permission", request_id=asked["request_id"], decision="maybe", by="key_test")
    assert bad["ok"] is False and bad["error"]["code"] == "invalid_argument"
    done = runner.wait_type("turn_complete", turn=1)
    assert not done["is_error"]
    assert (tmp_path / "work" / "allowed.txt").read_text() == "content of allowed.txt\n"
    [resolved] = runner.of_type("permission_resolved")
    assert resolved == {
        **resolved,
        "request_id": asked["request_id"],
        "decision": "allow",
        "by": "key_test",
        "reason": "answered",
        "message": None,
    }
    assert asked["seq"] < resolved["seq"] < done["seq"]
    runner.stop()


def test_a_denial_and_its_message_reach_the_agent(
    start: Callable[..., Runner], simulator: Simulator, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    runner = start(permission_mode="default", prompt=_write_prompt("denied.txt") + f"\n{marker}")
    asked = runner.wait_type("permission_requested")
    message = f"not in this directory ({marker})"
    runner.ok("permission", request_id=asked["request_id"], decision="deny", message=message, by="key_test")
    runner.wait_type("turn_complete", turn=1)
    assert not (tmp_path / "work" / "denied.txt").exists()
    assert simulator.request_with(marker)["last_tool_result"] == message
    assert runner.of_type("permission_resolved")[0]["message"] == message
    runner.stop()


def test_an_interrupt_denies_what_is_pending_and_ends_the_turn(start: Callable[..., Runner]) -> None:
    runner = start(permission_mode="default", prompt=_write_prompt("never.txt"))
    asked = runner.wait_type("permission_requested")
    assert runner.ok("interrupt", by="key_interrupter") == {"interrupted": True, "turn": 1}
    resolved = runner.wait_type("permission_resolved")
    assert (resolved["request_id"], resolved["decision"]) == (asked["request_id"], "deny")
    assert (resolved["by"], resolved["reason"]) == ("key_interrupter", "interrupted")
    done = runner.wait_type("turn_complete", turn=1)
    assert done["interrupted"] is True
    late = runner.request("permission", request_id=asked["request_id"], decision="allow", by="key_test")
    assert late["error"]["code"] == "already_resolved"
    runner.run_turn("@say still here")  # default mode asks nothing for a reply
    assert "still here" in runner.texts()[-1]
    runner.stop()


def test_an_unanswered_request_is_denied_after_the_sessions_timeout(start: Callable[..., Runner]) -> None:
    runner = start(permission_mode="default", permission_timeout_s=0.5, prompt=_write_prompt("late.txt"))
    asked = runner.wait_type("permission_requested")
    resolved = runner.wait_type("permission_resolved", timeout=10)
    assert (resolved["decision"], resolved["by"], resolved["reason"]) == ("deny", "session", "timeout")
    waited = datetime.fromisoformat(resolved["time"]) - datetime.fromisoformat(asked["time"])
    assert 0.4 < waited.total_seconds() < 5
    assert "0.5 s" in resolved["message"]
    assert not runner.wait_type("turn_complete", turn=1)["interrupted"]
    # The timeout is the runner's own setting: changed in place, for the next request.
    assert runner.ok("configure", permission_timeout_s=None)["permission_timeout_s"] is None
    refused = runner.request("configure", permission_timeout_s=-1)
    assert refused["error"]["code"] == "invalid_argument"
    runner.stop()


def test_allow_with_remember_applies_claude_codes_suggestion(start: Callable[..., Runner], tmp_path: Path) -> None:
    runner = start(permission_mode="default", prompt=_write_prompt("one.txt"))
    asked = runner.wait_type("permission_requested")
    assert asked["suggestions"], asked  # for a Write: accept edits from now on
    runner.ok("permission", request_id=asked["request_id"], decision="allow", remember=True, by="key_test")
    runner.wait_type("turn_complete", turn=1)
    runner.run_turn(_write_prompt("two.txt"))
    assert len(runner.of_type("permission_requested")) == 1  # not asked again
    assert (tmp_path / "work" / "two.txt").exists()
    runner.stop()


# --------------------------------------------------------------------------- the journal itself


def test_with_await_seals_a_turn_begins_only_after_the_servers_sealed(start: Callable[..., Runner]) -> None:
    runner = start(prompt="@say first", await_seals=True)
    runner.wait_type("ready")
    assert runner.ok("prompt", text="@say second") == {"queued": 1, "turn": 2}
    held = runner.until(lambda status: status["awaiting_seal"] is not None)
    assert (held["awaiting_seal"], held["queued"]) == (1, 2)  # nothing before "sealed 0": the workspace before
    assert runner.of_type("turn_started") == []
    assert runner.ok("sealed", turn=0) == {"sealed": 0}
    runner.wait_type("turn_complete", turn=1)
    assert runner.until(lambda status: status["awaiting_seal"] is not None)["awaiting_seal"] == 2
    assert [e["turn"] for e in runner.of_type("turn_started")] == [1]  # the second waits for the first's end seal
    assert runner.ok("sealed", turn=1) == {"sealed": 1}
    runner.wait_type("turn_complete", turn=2)
    assert runner.ok("status")["awaiting_seal"] is None
    assert not runner.request("sealed", turn=-1)["ok"] and not runner.request("sealed", turn="1")["ok"]
    runner.stop()


def test_a_prompt_that_says_sealed_begins_without_waiting(start: Callable[..., Runner]) -> None:
    runner = start(prompt="", await_seals=True)
    runner.wait_type("ready")
    refused = runner.request("prompt", text="@say never", sealed=-1)
    assert not refused["ok"] and "sealed" in refused["error"]["message"]
    assert runner.ok("prompt", text="@say first", sealed=0) == {"queued": 0, "turn": 1}
    runner.wait_type("turn_complete", turn=1)  # no separate "sealed": the prompt said it
    assert runner.ok("status")["awaiting_seal"] is None
    runner.stop()


def test_journal_numbers_events_and_continues_after_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    journal = Journal(path, "ses_1")
    assert journal.append("error", code="x", message="first")["seq"] == 1
    journal.append("stderr", text="x" * 200_000)  # longer than one tail-scan window
    journal.close()
    assert read_last_seq(path) == 2
    with open(path, "ab") as f:
        f.write(b'{"seq": 3, "session_id": "ses_1", "ty')  # the writer died mid-line
    events, offset = read_events(path)
    assert [e["seq"] for e in events] == [1, 2]
    assert read_events(path, offset) == ([], offset)
    journal = Journal(path, "ses_1")
    assert journal.append("stderr", text="after")["seq"] == 3
    journal.close()
    more, _ = read_events(path, offset)
    assert [(e["seq"], e["type"]) for e in more] == [(3, "stderr")]
    events, _ = read_events(path)
    assert [e["seq"] for e in events] == [1, 2, 3]
    for event in events:
        assert not list(VALIDATOR.iter_errors(event))
    assert read_last_seq(tmp_path / "missing.jsonl") == 0


def test_schema_knows_scrollback_end_and_rejects_unknown_types() -> None:
    assert VALIDATOR.is_valid({"type": "scrollback_end", "last_seq": 42})
    common = {"seq": 1, "session_id": "s", "time": "2025-01-01T00:00:00Z"}
    assert not VALIDATOR.is_valid({**common, "type": "telepathy"})
    assert not VALIDATOR.is_valid({**common, "type": "exit"})  # exit_code missing
    assert not VALIDATOR.is_valid({"type": "exit", "exit_code": 0})  # common fields missing
    assert VALIDATOR.is_valid({**common, "type": "assistant", "content": [], "model": "m", "extra": 1})

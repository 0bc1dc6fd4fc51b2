"""``make demo``: a real agent session, end to end, against a Cove server on its embedded defaults.

It starts ``cove serve`` (unless one already answers at COVE_URL), creates a sandbox, has Claude Code write and
run a small program, sends a follow-up, interrupts a slow turn, resumes the conversation in a new session, and
prints what happened as a readable transcript — the server's own log goes to a file, not between the lines.
Without ANTHROPIC_API_KEY the model is Cove's simulator (the ``@`` lines in the prompts are its script, and its
token counts and costs are simulated); with a key, the same prompts go to the real model.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx

from cove.config import DEFAULT_URL, cove_home
from cove.sdk import AgentEvent, AgentSession, Sandbox, format_event

WRITE_AND_RUN = """Write a Python program fib.py that prints the first ten Fibonacci numbers, then run it.
@write fib.py
a, b = 0, 1
for _ in range(10):
    print(a, end=" ")
    a, b = b, a + b
print()
@end
@bash python3 fib.py"""
FOLLOW_UP = "Now count the lines of fib.py.\n@bash wc -l fib.py"
SLOW = "Explain the Fibonacci sequence at great length.\n@slow 30 The Fibonacci sequence is..."
RECALL = "What did I ask you to do earlier in this conversation?\n@recall"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def printer(simulated: bool) -> Callable[[AgentEvent], None]:
    def show(event: AgentEvent) -> None:
        if text := format_event(event, simulated=simulated):
            print(text, flush=True)

    return show


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The server at COVE_URL if one answers, otherwise ``cove serve`` on the defaults for the demo's length,
    its log in a file so that the transcript reads on its own."""
    url = os.environ.get("COVE_URL", DEFAULT_URL)
    with contextlib.suppress(httpx.TransportError):
        if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
            yield url
            return
    cove_home().mkdir(parents=True, exist_ok=True)
    log_path = cove_home() / "demo-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "cove", "serve"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"cove serve did not start; its log is {log_path}")
            time.sleep(0.1)
        print(f"(started `cove serve` for the demo; its log: {log_path})")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_stream_start(session: AgentSession) -> None:
    for event in session.events():
        if event.type == "turn_started" and event.get("prompt") == SLOW:
            return


def main() -> None:
    limits = {"memory_mb": 2048, "pids": 512}
    with server() as url, Sandbox.create(labels={"purpose": "demo"}, limits=limits) as sandbox:
        simulated = sandbox.agent.model_info().upstream == "simulator"
        model = "Cove's model simulator (tokens and costs are simulated)" if simulated else "the real model"
        say(f"Cove server at {url}; agents talk to {model}")
        print(f"watch it in the Inspector: {url}/ui/ (sign in with the key in {cove_home() / 'admin_key'})")
        print(f"sandbox {sandbox.id}: enforced limits {sandbox.info.enforced_limits}")
        show = printer(simulated)

        say("1. the agent writes and runs a program")
        session = sandbox.agent.start(WRITE_AND_RUN, on_event=show)
        conversation = session.wait(timeout=120)["claude_session_id"]
        print(f"(fib.py in the sandbox: {sandbox.files.read_text('fib.py').count(chr(10))} lines)")

        say("2. a follow-up prompt in the same conversation")
        session.send_prompt(FOLLOW_UP)
        session.wait(timeout=120)

        say("3. interrupting a slow, streamed turn")
        session.send_prompt(SLOW)
        wait_for_stream_start(session)
        time.sleep(1)  # let it stream for a moment, so there is something to interrupt
        started = time.monotonic()
        result = session.interrupt()
        session.wait(timeout=30)
        print(f"interrupted turn {result.turn} in {1000 * (time.monotonic() - started):.0f} ms")
        session.kill()

        say("4. resuming the conversation in a new session")
        resumed = sandbox.agent.start(RECALL, resume=conversation, on_event=show)
        resumed.wait(timeout=120)
        resumed.kill()

        say("sessions of this sandbox")
        for info in sandbox.agent.list():
            cost = f"${info.total_cost_usd:.4f}" + (" (simulated)" if simulated else "")
            print(f"{info.session_id}  {info.status:8} turns={info.turns}  {cost}")
    say("done")


if __name__ == "__main__":
    main()

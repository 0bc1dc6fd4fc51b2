"""The Inspector (issue 15) in headless Chromium: what a first visit downloads, how soon a long session's first
events are on screen, and how smooth the page stays while events pour in.

- First load: the bytes the browser received for the page, its script and its stylesheet (Resource Timing's
  ``encodedBodySize``: compressed, as sent), signed in on the sandboxes view.
- A session of 10,000 events: from the navigation's start to the first rows painted (the page marks
  ``cove:first-event`` one frame after it draws them), and to the whole history applied (the stream live).
- Streaming: the session open and following while 1,000 events a second are appended for 10 s; every frame's
  interval (``requestAnimationFrame``) and Chrome's long animation frames (over 50 ms) during that time.

The events are a real session's shapes (deltas of text and thinking, the assistant messages they add up to, tool
calls and results, turn ends), appended to an idle session's journal as its runner would write them, so the
server ingests and streams them as it does any event.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from playwright.sync_api import Browser, sync_playwright

from benchmarks._harness import (
    BenchServer,
    markdown_table,
    ms,
    percentile,
    print_table,
    running_server,
    verdict,
)
from cove.api.inspector import BUILT
from cove.testing import CHROMIUM_FLAGS, chromium

HISTORY = 10_000
OPENS = 10
STREAM_RATE = 1000  # events a second
STREAM_SECONDS = 10
FIRST_LOAD_GOAL = 250 * 1024
FIRST_EVENT_GOAL_MS = 1000
FRAME_GOAL_MS = 50
SENTENCE = "the agent reads the file then edits the function and runs the tests again until they pass"
WORDS = SENTENCE.split(" ")


def _events(session: str, first_seq: int) -> Iterator[dict[str, Any]]:
    """Turns as Claude Code's runner journals them, without end: seq from ``first_seq`` on."""
    seq = first_seq
    turn = 0

    def event(kind: str, **fields: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"seq": seq, "session_id": session, "type": kind, "time": "2026-01-01T00:00:00Z", **fields}

    while True:
        turn += 1
        yield event("turn_started", turn=turn, prompt=f"Step {turn}: fix the failing test and explain the fix.")
        for step in range(3):
            message = f"msg_bench_{turn}_{step}"
            thinking = ""
            for i in range(4):
                piece = " ".join(WORDS[i : i + 4]) + " "
                thinking += piece
                yield event("thinking_delta", message_id=message, index=0, text=piece)
            yield event("assistant", message_id=message, content=[{"type": "thinking", "thinking": thinking}])
            text = ""
            for i in range(12):
                piece = " ".join(WORDS[i % 10 : i % 10 + 5]) + " "
                text += piece
                yield event("text_delta", message_id=message, index=1, text=piece)
            yield event("assistant", message_id=message, content=[{"type": "text", "text": text}])
            tool = f"toolu_bench_{turn}_{step}"
            command = {"command": f"pytest -q tests/test_{step}.py", "description": "Run the tests"}
            call = {"type": "tool_use", "id": tool, "name": "Bash", "input": command}
            yield event("assistant", message_id=message, content=[call])
            output = "\n".join(f"tests/test_{step}.py::test_{n} PASSED" for n in range(8))
            result = {"type": "tool_result", "tool_use_id": tool, "content": output, "is_error": False}
            yield event("user", content=[result])
        usage = {"input_tokens": 1200, "output_tokens": 300}
        usage |= {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        totals = {key: value * turn for key, value in usage.items()}
        yield event(
            "turn_complete",
            turn=turn,
            claude_session_id="bench",
            usage=usage,
            cost_usd=0.01,
            total_usage=totals,
            total_cost_usd=0.01 * turn,
            is_error=False,
            interrupted=False,
        )


class Journal:
    """An idle session's journal, grown as its runner would grow it."""

    def __init__(self, server: BenchServer) -> None:
        with server.http() as client:
            self.sandbox = client.post("/v1/sandboxes", json={}).json()["id"]
            self.session = client.post(f"/v1/sandboxes/{self.sandbox}/agent", json={}).json()["session_id"]
            self.api = f"/v1/sandboxes/{self.sandbox}/agent/{self.session}"
            while client.get(self.api).json()["status"] == "starting":
                time.sleep(0.05)
        self.server = server
        self.path = server.session_journal(self.sandbox, self.session)
        self.last = sum(1 for _ in self.path.open())
        self.source = _events(self.session, self.last)

    def append(self, count: int) -> None:
        lines = "".join(json.dumps(next(self.source)) + "\n" for _ in range(count))
        with self.path.open("a") as handle:
            handle.write(lines)
        self.last += count

    def ingested(self) -> None:
        with self.server.http() as client:
            while client.get(self.api).json()["last_seq"] < self.last:
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"{self.server.url}/ui/sandboxes/{self.sandbox}/sessions/{self.session}"


def _signed_in(browser: Browser, server: BenchServer) -> Any:
    """A browser context whose tabs start signed in (the page's own session storage entry, set before its
    scripts run), so a measurement starts at the navigation and not at a form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    credentials = json.dumps(
        {
            "kind": "key",
            "secret": server.api_key,
            "scopes": ["read", "prompt", "approve", "exec", "files", "preview"],
            "admin": True,
            "sandboxId": None,
            "sessionId": None,
        }
    )
    context.add_init_script(f"sessionStorage.setItem('cove.credentials', {json.dumps(credentials)})")
    return context


def _first_load(browser: Browser, server: BenchServer) -> dict[str, int]:
    context = _signed_in(browser, server)
    page = context.new_page()
    page.goto(server.url + "/ui/")
    page.get_by_role("heading", name="Sandboxes").wait_for()
    sizes: dict[str, int] = page.evaluate(
        """() => {
            const sizes = {html: performance.getEntriesByType('navigation')[0].encodedBodySize, js: 0, css: 0};
            for (const entry of performance.getEntriesByType('resource')) {
                if (entry.name.endsWith('.js')) sizes.js += entry.encodedBodySize;
                if (entry.name.endsWith('.css')) sizes.css += entry.encodedBodySize;
            }
            return sizes;
        }"""
    )
    context.close()
    return sizes


def _open_history(browser: Browser, journal: Journal) -> tuple[list[float], list[float]]:
    """Open the session ``OPENS`` times: ms to the first rows painted, and to the whole history applied."""
    first, whole = [], []
    for _ in range(OPENS):
        context = _signed_in(browser, journal.server)
        page = context.new_page()
        page.goto(journal.url)
        # Polled from here: the page's own policy forbids the eval a wait_for_function would run in it. The mark
        # holds the time itself, so how often it is polled does not matter.
        deadline = time.monotonic() + 60
        while not (mark := page.evaluate("performance.getEntriesByName('cove:first-event')[0]?.startTime")):
            assert time.monotonic() < deadline, "no event was drawn in 60 s"
            time.sleep(0.02)
        first.append(mark)
        page.get_by_test_id("event-count").filter(has_text=f"{journal.last:,} events").wait_for(timeout=60_000)
        whole.append(page.evaluate("performance.now()"))
        context.close()
    return first, whole


def _stream(browser: Browser, journal: Journal) -> tuple[list[float], list[tuple[float, float]]]:
    """Frame intervals (ms) while events stream in at ``STREAM_RATE``, and Chrome's long animation frames in that
    time: each one's duration and the page's own work in it (ms)."""
    context = _signed_in(browser, journal.server)
    page = context.new_page()
    page.goto(journal.url)
    page.get_by_test_id("event-count").filter(has_text=f"{journal.last:,} events").wait_for(timeout=60_000)
    page.evaluate(
        """() => {
            window.benchFrames = [];
            window.benchLong = [];
            new PerformanceObserver((list) => {
                for (const entry of list.getEntries()) {
                    // The page's own work in the frame: its scripts, and style and layout after them.
                    const scripts = entry.scripts.reduce((sum, script) => sum + script.duration, 0);
                    const end = entry.startTime + entry.duration;
                    const render = entry.renderStart ? end - entry.renderStart : 0;
                    window.benchLong.push([entry.duration, scripts + render]);
                }
            }).observe({type: 'long-animation-frame'});
            const tick = (now) => { window.benchFrames.push(now); requestAnimationFrame(tick); };
            requestAnimationFrame(tick);
        }"""
    )
    stop = threading.Event()

    def writer() -> None:
        # Appends every 20 ms, as a busy runner's journal grows: 20 events each time at 1,000 a second.
        batch = STREAM_RATE // 50
        next_at = time.monotonic()
        while not stop.is_set():
            journal.append(batch)
            next_at += 0.02
            time.sleep(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(STREAM_SECONDS)
    stop.set()
    thread.join()
    journal.ingested()
    page.get_by_test_id("event-count").filter(has_text=f"{journal.last:,} events").wait_for(timeout=60_000)
    frames: list[float] = page.evaluate("window.benchFrames")
    long_frames: list[tuple[float, float]] = page.evaluate("window.benchLong")
    context.close()
    intervals = [b - a for a, b in itertools.pairwise(frames)]
    return intervals, long_frames


def _run() -> str:
    if not (BUILT / "index.html").is_file():
        raise SystemExit("the Inspector is not built: `make ui` builds it")
    loads = [os.getloadavg()[0]]
    with running_server() as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            sizes = _first_load(browser, server)
            journal = Journal(server)
            journal.append(HISTORY - journal.last)
            journal.ingested()
            history = journal.last
            first, whole = _open_history(browser, journal)
            loads.append(os.getloadavg()[0])
            intervals, long_frames = _stream(browser, journal)
            loads.append(os.getloadavg()[0])
        finally:
            browser.close()

    total = sum(sizes.values())
    first_p50 = statistics.median(first)
    worst_frame = max(intervals) if intervals else float("nan")
    worst_work = max((work for _, work in long_frames), default=0.0)
    rows = [
        [
            "first load of /ui/, compressed (HTML + JS + CSS)",
            f"{total / 1024:.1f} KB ({sizes['html']:,} + {sizes['js']:,} + {sizes['css']:,} bytes)",
            "< 250 KB",
            verdict(total < FIRST_LOAD_GOAL),
        ],
        [
            f"page open → first event drawn, {history:,}-event session ({OPENS} opens)",
            f"p50 {ms(first_p50, 0)} ms, max {max(first):.0f} ms",
            "< 1 s",
            verdict(max(first) < FIRST_EVENT_GOAL_MS),
        ],
        [
            "(not a target) page open → whole history applied",
            f"p50 {statistics.median(whole):.0f} ms, max {max(whole):.0f} ms",
            "—",
            "",
        ],
        [
            f"frame interval while {STREAM_RATE:,} events/s stream in ({STREAM_SECONDS} s, {len(intervals)} frames)",
            f"p50 {percentile(intervals, 50):.1f} / p99 {percentile(intervals, 99):.1f} / max {worst_frame:.1f} ms",
            f"no frame > {FRAME_GOAL_MS} ms",
            verdict(worst_frame <= FRAME_GOAL_MS),
        ],
        [
            "(not a target) long animation frames (> 50 ms) in that time",
            f"{len(long_frames)}" + (f", longest {max(d for d, _ in long_frames):.0f} ms" if long_frames else ""),
            "—",
            "",
        ],
        [
            "(not a target) the page's own work (script, style, layout) in any of them, at most",
            f"{worst_work:.0f} ms",
            "—",
            "",
        ],
    ]
    headers = ["measure", "result", "target", ""]
    print_table("Inspector", headers, rows)
    note = (
        "\nHeadless Chromium (Debian's) through Playwright, on the same machine as the server; the 10,000 events "
        "are turns of thinking and text deltas, the messages they add up to, tool calls and results. A long "
        "animation frame whose own work is short waited for a core: 1-minute load average at the start, after "
        f"the opens and after the stream: {' → '.join(f'{load:.2f}' for load in loads)} on {os.cpu_count()} cores.\n"
    )
    return "## Inspector (issue 15)\n\n" + markdown_table(headers, rows) + "\n" + note


def main() -> str:
    return _run()

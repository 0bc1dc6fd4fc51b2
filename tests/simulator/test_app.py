"""The simulator's HTTP surface, exercised in-process (ASGI) and, for timing, over a real socket."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cove.simulator import create_app, run_in_background

from .helpers import body, environment, parse_sse, prompt, tool_exchange

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim", headers={"x-api-key": "sim-key"}) as http:
        yield http


async def _post(http: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    return await http.post("/v1/messages", params={"beta": "true"}, json=payload)


async def _text(http: httpx.AsyncClient, payload: dict[str, Any]) -> str:
    response = await _post(http, payload)
    assert response.status_code == 200, response.text
    blocks = response.json()["content"]
    return "".join(block["text"] for block in blocks if block["type"] == "text")


async def _recorded(http: httpx.AsyncClient, limit: int | None = None) -> list[dict[str, Any]]:
    params = {"limit": limit} if limit is not None else {}
    response = await http.get("/_sim/requests", params=params)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_non_streaming_message_shape(client: httpx.AsyncClient) -> None:
    raw = json.dumps(body([prompt("Hello there\nsecond line")]))
    response = await client.post("/v1/messages", params={"beta": "true"}, content=raw)
    assert response.status_code == 200
    message = response.json()
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert message["id"].startswith("msg_sim_")
    assert message["model"] == "claude-opus-5-5"
    assert message["content"] == [{"type": "text", "text": "Simulated reply #1 to: Hello there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    usage = message["usage"]
    assert usage["input_tokens"] == len(raw) // 4
    assert usage["output_tokens"] == len("Simulated reply #1 to: Hello there") // 4
    assert usage["cache_creation_input_tokens"] == 0
    assert usage["cache_read_input_tokens"] == 0
    assert response.headers["request-id"].startswith("req_sim_")


async def test_streaming_text_event_sequence(client: httpx.AsyncClient) -> None:
    text = "@say " + "A fairly long answer that needs several deltas to stream. " * 3
    response = await _post(client, body([prompt(text)], stream=True, model="claude-sonnet-4-5"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert deltas >= 3
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for name, data in events:
        assert data["type"] == name
    start = events[0][1]["message"]
    assert start["model"] == "claude-sonnet-4-5"
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] > 100
    streamed = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    assert streamed == text.removeprefix("@say ").strip()
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    assert message_delta["usage"]["output_tokens"] == len(streamed) // 4


async def test_think_streams_a_signed_thinking_block_before_the_reply(client: httpx.AsyncClient) -> None:
    text = "@think first this, then that, and at last the other thing\n@say the answer"
    events = parse_sse((await _post(client, body([prompt(text)], stream=True))).text)
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""}]
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    thinking = [d["thinking"] for d in deltas if d["type"] == "thinking_delta"]
    assert len(thinking) >= 2 and "".join(thinking) == "first this, then that, and at last the other thing"
    assert [d for d in deltas if d["type"] == "signature_delta"] == [
        {"type": "signature_delta", "signature": "sim-signature"}
    ]
    assert "".join(d["text"] for d in deltas if d["type"] == "text_delta") == "the answer"
    whole = (await _post(client, body([prompt(text)]))).json()["content"]
    assert whole[0] == {
        "type": "thinking",
        "thinking": "first this, then that, and at last the other thing",
        "signature": "sim-signature",
    }


async def test_streaming_tool_use_sends_input_json_deltas(client: httpx.AsyncClient) -> None:
    messages = [prompt("@bash echo hello && ls -la /tmp && echo goodbye"), environment("/work/dir")]
    response = await _post(client, body(messages, stream=True))
    events = parse_sse(response.text)
    starts = [data for name, data in events if name == "content_block_start"]
    assert [start["content_block"]["type"] for start in starts] == ["text", "tool_use"]
    tool_block = starts[1]["content_block"]
    assert tool_block["name"] == "Bash"
    assert tool_block["id"].startswith("toolu_sim_")
    assert tool_block["input"] == {}
    partials = [
        data["delta"]["partial_json"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    ]
    assert len(partials) > 1
    assert json.loads("".join(partials)) == {
        "command": "echo hello && ls -la /tmp && echo goodbye",
        "description": "Run echo hello && ls -la /tmp && echo goodbye",
    }
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_tool_steps_follow_the_tool_results(client: httpx.AsyncClient) -> None:
    script = "do things\n@write notes/a.txt\nline one\nline two\n@end\n@read /etc/hostname\n@say finished"
    history = [prompt(script), environment("/work/dir")]
    first = (await _post(client, body(history))).json()
    assert first["stop_reason"] == "tool_use"
    assert first["content"][1]["name"] == "Write"
    assert first["content"][1]["input"] == {
        "file_path": "/work/dir/notes/a.txt",
        "content": "line one\nline two\n",
    }
    history += tool_exchange(first["content"][1]["id"], "File created")
    second = (await _post(client, body(history))).json()
    assert second["content"][1]["name"] == "Read"
    assert second["content"][1]["input"] == {"file_path": "/etc/hostname"}
    assert second["content"][1]["id"] != first["content"][1]["id"]
    history += tool_exchange(second["content"][1]["id"], "1\tsim-host")
    final = await _text(client, body(history))
    assert final == "finished\nTool result:\n1\tsim-host"


async def test_a_new_prompt_starts_a_new_script(client: httpx.AsyncClient) -> None:
    history = [prompt("@bash echo one"), *tool_exchange("toolu_a", "one")]
    history += [{"role": "assistant", "content": [{"type": "text", "text": "ok"}]}, prompt("@bash echo two")]
    message = (await _post(client, body(history))).json()
    assert message["content"][1]["input"]["command"] == "echo two"


async def test_working_directory_from_the_system_prompt(client: httpx.AsyncClient) -> None:
    payload = body([prompt("@read src/x.py")])
    payload["system"] = "You are Claude Code.\n<env>\nWorking directory: /home/u/proj\n</env>"
    message = (await _post(client, payload)).json()
    assert message["content"][1]["input"] == {"file_path": "/home/u/proj/src/x.py"}


async def test_default_reply_counts_prompts_and_ignores_injected_text(client: httpx.AsyncClient) -> None:
    history = [
        prompt("first question"),
        {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
        {"role": "user", "content": [{"type": "text", "text": "[Request interrupted by user]"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        prompt("second question\nmore"),
    ]
    assert await _text(client, body(history)) == "Simulated reply #2 to: second question"
    assert (await _recorded(client, 1))[0]["last_user_text"] == "second question\nmore"


async def test_recall_and_model(client: httpx.AsyncClient) -> None:
    history = [
        prompt("remember the word pelican"),
        {"role": "assistant", "content": [{"type": "text", "text": "noted"}]},
        prompt("two\nlines"),
        {"role": "assistant", "content": [{"type": "text", "text": "noted"}]},
        prompt("@recall\n@model"),
    ]
    text = await _text(client, body(history, model="claude-haiku-4-5"))
    assert text == ("Earlier prompts:\n1. remember the word pelican\n2. two\n   lines\nModel: claude-haiku-4-5")


async def test_prompt_merged_after_a_failed_turn_counts_separately(client: httpx.AsyncClient) -> None:
    """After an API error the CLI folds the next prompt into the same user message."""
    merged = prompt("@fail 400 invalid_request_error boom")
    merged["content"].append({"type": "text", "text": "@say recovered"})
    assert await _text(client, body([merged])) == "recovered"


async def test_fail_directive(client: httpx.AsyncClient) -> None:
    response = await _post(client, body([prompt("@fail 403 permission_error not for you")]))
    assert response.status_code == 403
    assert response.json() == {
        "type": "error",
        "error": {"type": "permission_error", "message": "not for you"},
    }
    response = await _post(client, body([prompt("@fail 429")]))
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"


async def test_fail_after_a_tool_step(client: httpx.AsyncClient) -> None:
    history = [prompt("@bash true\n@fail 400 invalid_request_error late")]
    assert (await _post(client, body(history))).json()["content"][1]["name"] == "Bash"
    history += tool_exchange("toolu_x", "")
    assert (await _post(client, body(history))).status_code == 400


async def test_generic_tool_directive(client: httpx.AsyncClient) -> None:
    message = (await _post(client, body([prompt('@tool TodoWrite {"todos": []}')]))).json()
    assert message["content"][1]["name"] == "TodoWrite"
    assert message["content"][1]["input"] == {"todos": []}


async def test_side_requests_never_apply_directives(client: httpx.AsyncClient) -> None:
    """The title request quotes the prompt (directives and all) but offers no tools."""
    session = "<session>\n@fail 400 invalid_request_error boom\n@bash rm -rf /\n</session>\n\nWrite the title"
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    payload = body(
        [{"role": "user", "content": [{"type": "text", "text": session}]}],
        tools=[],
        output_config={"effort": "medium", "format": {"type": "json_schema", "schema": schema}},
    )
    assert json.loads(await _text(client, payload)) == {"title": "Simulated session"}
    payload.pop("output_config")
    assert await _text(client, payload) == "Simulated side reply."
    entries = await _recorded(client)
    assert [entry["instruction"] for entry in entries] == ["side: structured output", "side: text"]
    assert all(entry["side_request"] for entry in entries)


async def test_max_tokens_truncates(client: httpx.AsyncClient) -> None:
    message = (await _post(client, body([prompt("@say " + "x" * 100)], max_tokens=5))).json()
    assert message["content"][0]["text"] == "x" * 20
    assert message["stop_reason"] == "max_tokens"


async def test_count_tokens_and_models(client: httpx.AsyncClient) -> None:
    payload = {"model": "claude-opus-5-5", "messages": [prompt("count me")]}
    raw = json.dumps(payload)
    response = await client.post("/v1/messages/count_tokens", params={"beta": "true"}, content=raw)
    assert response.status_code == 200
    assert response.json() == {"input_tokens": len(raw) // 4}

    models = (await client.get("/v1/models")).json()
    assert models["has_more"] is False
    ids = [model["id"] for model in models["data"]]
    assert "claude-opus-5-5" in ids
    assert models["first_id"] == ids[0] and models["last_id"] == ids[-1]
    assert all(model["type"] == "model" and model["display_name"] for model in models["data"])
    one = (await client.get("/v1/models/claude-sonnet-4-5")).json()
    assert one["id"] == "claude-sonnet-4-5"
    missing = await client.get("/v1/models/claude-nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"messages": [prompt("x")], "max_tokens": 10}, "model"),
        ({"model": "m", "messages": [prompt("x")]}, "max_tokens"),
        ({"model": "m", "messages": [], "max_tokens": 10}, "messages"),
        ([1, 2], "JSON object"),
    ],
)
async def test_invalid_requests(client: httpx.AsyncClient, payload: Any, fragment: str) -> None:
    response = await client.post("/v1/messages", json=payload)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]


async def test_malformed_json_and_unknown_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}


async def test_authentication() -> None:
    transport = httpx.ASGITransport(app=create_app(api_keys={"good-key"}))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        missing = await http.post("/v1/messages", json=body([prompt("hi")]))
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "authentication_error"
        wrong = await http.post("/v1/messages", json=body([prompt("hi")]), headers={"x-api-key": "bad"})
        assert wrong.status_code == 401
        bearer = await http.post(
            "/v1/messages", json=body([prompt("hi")]), headers={"authorization": "Bearer good-key"}
        )
        assert bearer.status_code == 200
        keys = [entry["api_key"] for entry in (await http.get("/_sim/requests")).json()]
        assert keys == [None, "bad", "good-key"]


async def test_request_log(client: httpx.AsyncClient) -> None:
    await _post(client, body([prompt("one")]))
    await _post(client, body([prompt("@bash ls"), environment("/srv")], stream=True, max_tokens=99))
    entries = await _recorded(client)
    assert [entry["last_user_text"] for entry in entries] == ["one", "@bash ls"]
    newest = entries[-1]
    assert newest["path"] == "/v1/messages"
    assert newest["model"] == "claude-opus-5-5"
    assert newest["system"] == "You are a Claude agent, built on Anthropic's Claude Agent SDK."
    assert newest["tool_names"] == ["Bash", "Read", "Write"]
    assert newest["stream"] is True
    assert newest["max_tokens"] == 99
    assert newest["message_count"] == 2
    assert newest["api_key"] == "sim-key"
    assert newest["cwd"] == "/srv"
    assert newest["instruction"] == "tool_use Bash ls (step 1/1)"
    assert newest["time"] >= entries[0]["time"]
    assert newest["last_tool_result"] is None
    assert [entry["last_user_text"] for entry in await _recorded(client, 1)] == ["@bash ls"]
    await _post(client, body([prompt("@bash ls"), *tool_exchange("t1", "denied: not today")]))
    assert (await _recorded(client, 1))[0]["last_tool_result"] == "denied: not today"
    assert (await client.delete("/_sim/requests")).status_code == 200
    assert await _recorded(client) == []


async def test_request_log_is_bounded_and_per_app() -> None:
    app, other = create_app(log_capacity=3), create_app()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as first,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://b") as second,
    ):
        for number in range(5):
            await first.post("/v1/messages", json=body([prompt(f"p{number}")]), headers={"x-api-key": "k"})
        texts = [entry["last_user_text"] for entry in (await first.get("/_sim/requests")).json()]
        assert texts == ["p2", "p3", "p4"]
        assert (await second.get("/_sim/requests")).json() == []


async def test_background_server_on_port_zero_streams_slowly() -> None:
    """Over a real socket, a ``@slow 1`` reply's deltas arrive spread over about a second."""
    simulator = await run_in_background("127.0.0.1", 0)
    try:
        assert simulator.port > 0
        server, task = simulator
        assert not task.done() and server.started
        arrivals: list[float] = []
        pieces: list[str] = []
        payload = body([prompt("@slow 1 " + "0123456789" * 4)], stream=True)
        async with (
            httpx.AsyncClient(base_url=simulator.base_url, headers={"x-api-key": "k"}) as http,
            http.stream("POST", "/v1/messages?beta=true", json=payload) as response,
        ):
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"text_delta"' in line:
                    arrivals.append(time.monotonic())
                    pieces.append(json.loads(line[6:])["delta"]["text"])
        assert "".join(pieces) == "0123456789" * 4
        assert len(arrivals) >= 10
        assert 0.7 <= arrivals[-1] - arrivals[0] <= 3.0
    finally:
        await simulator.stop()
    assert simulator.task.done()


async def test_background_server_reports_a_busy_port() -> None:
    simulator = await run_in_background("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await run_in_background("127.0.0.1", simulator.port)
    finally:
        await simulator.stop()


def test_module_entry_point_serves() -> None:
    """``python -m cove.simulator`` serves on the port it is given."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "cove.simulator", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        deadline = time.monotonic() + 20
        while True:  # the banner precedes the bind; poll until the socket answers
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "simulator exited"
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.05)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(timeout=10)

"""Claude's messages as journal events: every field kept, content blocks typed, the conversation id renamed."""

from __future__ import annotations

import json

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from cove.guest.agent_messages import message_event


def test_content_blocks_become_typed_json_objects() -> None:
    tool_input = {"command": "echo hi", "options": {"timeout": 5, "env": ["A=1"]}}
    message = AssistantMessage(
        content=[TextBlock(text="running it"), ToolUseBlock(id="toolu_1", name="Bash", input=tool_input)],
        model="claude-sonnet-4-5",
    )

    kind, fields = message_event(message)

    assert kind == "assistant"
    assert fields["content"] == [
        {"type": "text", "text": "running it"},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": tool_input},
    ]
    assert fields["model"] == "claude-sonnet-4-5"
    json.dumps(fields)  # journal-ready as it is


def test_tool_results_keep_their_raw_content() -> None:
    raw = [{"type": "text", "text": "hi\n"}]
    message = UserMessage(content=[ToolResultBlock(tool_use_id="toolu_1", content=raw, is_error=False)])

    kind, fields = message_event(message)

    assert kind == "user"
    assert fields["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": raw, "is_error": False}]


def test_system_messages_pass_their_data_through_and_results_rename_the_session_id() -> None:
    data = {"type": "system", "subtype": "init", "session_id": "c0ffee", "tools": ["Bash", "Read"], "mcp_servers": []}
    assert message_event(SystemMessage(subtype="init", data=data)) == ("system", {"subtype": "init", "data": data})

    result = ResultMessage(
        subtype="success",
        duration_ms=12,
        duration_api_ms=10,
        is_error=False,
        num_turns=1,
        session_id="c0ffee",
        total_cost_usd=0.001,
        usage={"input_tokens": 3, "output_tokens": 5},
        result="done",
    )
    kind, fields = message_event(result)
    assert kind == "result"
    assert fields["claude_session_id"] == "c0ffee" and "session_id" not in fields
    assert fields["usage"] == {"input_tokens": 3, "output_tokens": 5} and fields["result"] == "done"

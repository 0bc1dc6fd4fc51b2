"""The instruction language's parsing edge cases (pure functions, no HTTP)."""

from __future__ import annotations

from cove.simulator.conversation import parse_conversation, strip_injected
from cove.simulator.script import Failure, TextReply, ToolUse, decide, parse_script

from .helpers import body, environment, prompt


def test_write_without_end_takes_the_rest_and_shields_directives() -> None:
    script = parse_script("@write a.txt\n@say not a directive here\nlast", "/w")
    assert [step.input for step in script.tools] == [
        {"file_path": "/w/a.txt", "content": "@say not a directive here\nlast\n"}
    ]
    assert script.text_parts == []


def test_unknown_at_words_and_paths_are_plain_text() -> None:
    assert parse_script("install @types/node\nping @alice\n email me@x.org", None).empty
    assert parse_script("@read ../up/../x.txt", "/a/b").tools[0].input == {"file_path": "/a/x.txt"}
    assert parse_script("@read rel.txt", None).tools[0].input == {"file_path": "rel.txt"}


def test_slow_and_fail_defaults() -> None:
    script = parse_script("@slow 2.5\n@fail 500", None)
    assert script.slow_seconds == 2.5
    assert script.text_parts == []
    assert (script.failures[0].status, script.failures[0].error_type) == (500, "api_error")
    assert parse_script("@fail teapot", None).failures[0].status == 400


def test_think_lines_make_the_thinking_of_the_final_reply() -> None:
    script = parse_script("@think one\n@say hi\n@think two", None)
    assert script.thinking_parts == ["one", "two"] and script.text_parts == ["hi"]
    decision = decide(parse_conversation(body([prompt("@think alone")])))
    assert decision == TextReply("Done.", thinking="alone")


def test_decisions_for_a_full_script() -> None:
    text = "@bash make\n@slow 1 building\n@model"
    decision = decide(parse_conversation(body([prompt(text), environment("/w")])))
    assert isinstance(decision, ToolUse)
    assert decision.input["command"] == "make"
    assert decision.tool_use_id == "toolu_sim_01_01"
    history = [
        prompt(text),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "ok"}]}],
        },
    ]
    final = decide(parse_conversation(body(history)))
    assert final == TextReply("building\nModel: claude-opus-5-5\nTool result:\nok", slow_seconds=1.0)


def test_fail_is_decided_before_tools() -> None:
    decision = decide(parse_conversation(body([prompt("@fail 404 not_found_error gone\n@bash ls")])))
    assert decision == Failure(404, "not_found_error", "gone")


def test_injected_text_is_not_a_prompt() -> None:
    assert strip_injected("<system-reminder>\nx\n</system-reminder>\n") == ""
    assert strip_injected("[Request interrupted by user for tool use]") == ""
    assert strip_injected("<system-reminder>r</system-reminder>\nreal text") == "real text"
    conversation = parse_conversation(body([{"role": "user", "content": "plain string prompt"}]))
    assert conversation.prompts == ["plain string prompt"]

"""The instruction language, and the decision of what to answer (see docs/simulator.md).

Directives are lines starting with ``@`` in the latest real user prompt. Tool directives become one
``tool_use`` per model call, in order; the step to take next is the number of ``tool_result`` blocks that
came back since that prompt. The decision is a pure function of the request, so it is deterministic and a
resumed conversation gets the same answers.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from cove.simulator.conversation import Conversation

ERROR_TYPES_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

_DIRECTIVE = re.compile(r"^\s*@(write|read|bash|tool|say|think|slow|fail|recall|model|end)\b[ \t]*(.*?)\s*$")


@dataclass(frozen=True)
class ToolStep:
    """One ``tool_use`` the simulated model will emit."""

    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class FailStep:
    """Answer with an HTTP error once ``after_tools`` tool steps have completed."""

    status: int
    error_type: str
    message: str
    after_tools: int


@dataclass
class Script:
    """The parsed directives of one prompt."""

    tools: list[ToolStep] = field(default_factory=list)
    failures: list[FailStep] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)
    """Final-reply pieces in prompt order; ``\\0recall`` / ``\\0model`` are filled in at answer time."""
    thinking_parts: list[str] = field(default_factory=list)
    """Lines of the thinking block that comes before the final reply."""
    slow_seconds: float | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.tools or self.failures or self.text_parts or self.thinking_parts or self.slow_seconds is not None
        )


@dataclass(frozen=True)
class ToolUse:
    """Decision: emit a tool call (with a short lead-in text block, as a real model does)."""

    name: str
    input: dict[str, Any]
    tool_use_id: str
    preface: str
    step: int
    steps: int


@dataclass(frozen=True)
class TextReply:
    """Decision: emit a final text reply (after a thinking block, if there is ``thinking``), optionally paced
    over ``slow_seconds``."""

    text: str
    slow_seconds: float | None = None
    kind: str = "reply"
    thinking: str | None = None


@dataclass(frozen=True)
class Failure:
    """Decision: answer the HTTP request with an Anthropic-shaped error."""

    status: int
    error_type: str
    message: str


Decision = ToolUse | TextReply | Failure

_RECALL = "\0recall"
_MODEL = "\0model"


def _resolve(path: str, cwd: str | None) -> str:
    """Make ``path`` absolute against the CLI's working directory, as Write/Read require."""
    if posixpath.isabs(path) or cwd is None:
        return path
    return posixpath.normpath(posixpath.join(cwd, path))


def _parse_fail(arg: str, after_tools: int) -> FailStep:
    parts = arg.split(None, 2)
    try:
        status = int(parts[0]) if parts else 400
    except ValueError:
        status = 400
    if not 400 <= status <= 599:
        status = 400
    error_type = parts[1] if len(parts) > 1 else ERROR_TYPES_BY_STATUS.get(status, "api_error")
    message = parts[2] if len(parts) > 2 else "Simulated failure"
    return FailStep(status, error_type, message, after_tools)


def parse_script(prompt: str, cwd: str | None) -> Script:
    """Parse the directives of ``prompt``; lines that are not directives are ignored."""
    script = Script()
    lines = prompt.splitlines()
    index = 0
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index])
        index += 1
        if match is None:
            continue
        name, arg = match.group(1), match.group(2)
        if name == "write":
            content: list[str] = []
            while index < len(lines) and lines[index].strip() != "@end":
                content.append(lines[index])
                index += 1
            index += 1  # skip "@end"
            text = "\n".join(content) + ("\n" if content else "")
            script.tools.append(ToolStep("Write", {"file_path": _resolve(arg, cwd), "content": text}))
        elif name == "read":
            script.tools.append(ToolStep("Read", {"file_path": _resolve(arg, cwd)}))
        elif name == "bash":
            description = f"Run {arg}" if len(arg) <= 60 else f"Run {arg[:57]}..."
            script.tools.append(ToolStep("Bash", {"command": arg, "description": description}))
        elif name == "tool":
            tool_name, _, raw_input = arg.partition(" ")
            try:
                tool_input = json.loads(raw_input) if raw_input.strip() else {}
            except json.JSONDecodeError:
                tool_input = {"input": raw_input}
            if not isinstance(tool_input, dict):
                tool_input = {"input": tool_input}
            script.tools.append(ToolStep(tool_name, tool_input))
        elif name == "say":
            script.text_parts.append(arg)
        elif name == "think":
            script.thinking_parts.append(arg)
        elif name == "slow":
            seconds_text, _, slow_text = arg.partition(" ")
            try:
                script.slow_seconds = max(0.0, float(seconds_text))
            except ValueError:
                script.slow_seconds = 1.0
                slow_text = arg
            if slow_text.strip():
                script.text_parts.append(slow_text.strip())
        elif name == "fail":
            script.failures.append(_parse_fail(arg, len(script.tools)))
        elif name == "recall":
            script.text_parts.append(_RECALL)
        elif name == "model":
            script.text_parts.append(_MODEL)
    return script


def _recall(prompts: list[str]) -> str:
    earlier = prompts[:-1]
    if not earlier:
        return "Earlier prompts: none."
    lines = ["Earlier prompts:"]
    for number, prompt in enumerate(earlier, start=1):
        lines.append(f"{number}. " + prompt.replace("\n", "\n   "))
    return "\n".join(lines)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _side_value(schema: Any, name: str) -> Any:
    """A small deterministic value conforming to a (simple) JSON schema."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        return {key: _side_value(sub, key) for key, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "Simulated session" if name == "title" else f"Simulated {name or 'value'}"


def decide_side(conversation: Conversation) -> TextReply:
    """Answer a side request (title, summary, ...) plausibly, never applying directives."""
    if conversation.output_schema is not None:
        value = _side_value(conversation.output_schema, "")
        return TextReply(json.dumps(value), kind="side: structured output")
    return TextReply("Simulated side reply.", kind="side: text")


def decide(conversation: Conversation) -> Decision:
    """Decide the answer to one request from the conversation it carries."""
    if conversation.is_side_request:
        return decide_side(conversation)
    prompt_number = len(conversation.prompts)
    script = parse_script(conversation.latest_prompt, conversation.cwd)
    if script.empty:
        return TextReply(
            f"Simulated reply #{prompt_number} to: {_first_line(conversation.latest_prompt)}",
            kind="default reply",
        )
    done = len(conversation.tool_results)
    for failure in script.failures:
        if failure.after_tools == done:
            return Failure(failure.status, failure.error_type, failure.message)
    if done < len(script.tools):
        step = script.tools[done]
        detail = step.input.get("file_path") or step.input.get("command") or ""
        return ToolUse(
            name=step.name,
            input=step.input,
            tool_use_id=f"toolu_sim_{prompt_number:02d}_{done + 1:02d}",
            preface=f"Step {done + 1}/{len(script.tools)}: {step.name} {detail}".rstrip(),
            step=done + 1,
            steps=len(script.tools),
        )
    parts: list[str] = []
    for part in script.text_parts:
        if part == _RECALL:
            parts.append(_recall(conversation.prompts))
        elif part == _MODEL:
            parts.append(f"Model: {conversation.model}")
        else:
            parts.append(part)
    if script.tools:
        if not parts:
            parts.append(f"Done: {len(script.tools)} tool step(s).")
        parts.append("Tool result:\n" + (conversation.tool_results[-1] if conversation.tool_results else ""))
    text = "\n".join(parts) if parts else ("Simulated slow reply." if script.slow_seconds is not None else "Done.")
    thinking = "\n".join(script.thinking_parts) or None
    return TextReply(text, slow_seconds=script.slow_seconds, thinking=thinking)


def describe(decision: Decision) -> str:
    """A one-line account of a decision, recorded in ``/_sim/requests`` as ``instruction``."""
    if isinstance(decision, ToolUse):
        detail = decision.input.get("file_path") or decision.input.get("command") or ""
        return f"tool_use {decision.name} {detail} (step {decision.step}/{decision.steps})".replace("  ", " ")
    if isinstance(decision, Failure):
        return f"fail {decision.status} {decision.error_type}"
    if decision.slow_seconds is not None:
        return f"slow {decision.slow_seconds:g}s reply"
    return decision.kind

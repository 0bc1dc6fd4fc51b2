/// <reference types="node" />
// The session model: events in, items and state out — with events as a sandbox may write them.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { AgentEvent } from "@cove/sdk/events.js";

import { SessionModel, type TextItem, type ToolItem } from "../src/session/model.js";

let seq = 0;
function event(type: string, fields: Record<string, unknown> = {}): AgentEvent {
  seq += 1;
  return { seq, session_id: "ses_test", type, time: "2026-01-01T00:00:00Z", ...fields } as unknown as AgentEvent;
}

function fresh(): SessionModel {
  seq = 0;
  return new SessionModel();
}

test("text deltas grow one item, which the assistant event then settles", () => {
  const model = fresh();
  model.apply([event("turn_started", { turn: 1, prompt: "hi" })]);
  model.apply([event("text_delta", { message_id: "m1", index: 0, text: "Hel" })]);
  const item = model.items[1] as TextItem;
  assert.equal(item.kind, "text");
  assert.equal(item.text, "Hel");
  assert.equal(item.streaming, true);
  const rev = item.rev;
  model.apply([event("text_delta", { message_id: "m1", index: 0, text: "lo" })]);
  assert.equal(item.text, "Hello");
  assert.ok(item.rev > rev);
  model.apply([event("assistant", { message_id: "m1", model: "m", content: [{ type: "text", text: "Hello!" }] })]);
  assert.equal(model.items.length, 2);
  assert.equal(item.text, "Hello!");
  assert.equal(item.streaming, false);
  assert.equal(model.state.status, "running");
});

test("thinking and text of one message stay apart, in order", () => {
  const model = fresh();
  model.apply([
    event("thinking_delta", { message_id: "m1", index: 0, text: "hmm" }),
    event("text_delta", { message_id: "m1", index: 1, text: "Yes" }),
    event("assistant", { message_id: "m1", content: [{ type: "thinking", thinking: "hmm." }] }),
    event("assistant", { message_id: "m1", content: [{ type: "text", text: "Yes." }] }),
  ]);
  assert.deepEqual(
    model.items.map((item) => [item.kind, (item as TextItem).text]),
    [
      ["thinking", "hmm."],
      ["text", "Yes."],
    ],
  );
});

test("a tool call gets its result and its permission request on one card", () => {
  const model = fresh();
  model.apply([
    event("assistant", { message_id: "m1", content: [{ type: "tool_use", id: "tu1", name: "Write", input: { file_path: "a" } }] }),
    event("permission_requested", { request_id: "perm_1", tool_name: "Write", input: {}, suggestions: [], tool_use_id: "tu1" }),
  ]);
  const tool = model.items[0] as ToolItem;
  assert.equal(model.items.length, 1, "the request shows on the card, not as a row of its own");
  assert.equal(model.pending.size, 1);
  assert.equal(tool.permission?.resolution, null);
  model.apply([
    event("permission_resolved", { request_id: "perm_1", decision: "deny", by: "key_1", reason: "answered", message: "no" }),
    event("user", { content: [{ type: "tool_result", tool_use_id: "tu1", content: [{ type: "text", text: "denied" }], is_error: true }] }),
  ]);
  assert.equal(model.pending.size, 0);
  assert.deepEqual(tool.permission?.resolution, { decision: "deny", by: "key_1", reason: "answered", message: "no" });
  assert.deepEqual(tool.result, { text: "denied", isError: true });
});

test("each seq is applied once, however often it arrives", () => {
  const model = fresh();
  const events = [event("turn_started", { turn: 1, prompt: "a" }), event("text_delta", { message_id: "m", index: 0, text: "x" })];
  model.apply(events);
  model.apply(events);
  assert.equal(model.eventCount, 2);
  assert.equal((model.items[1] as TextItem).text, "x");
});

test("a turn's end carries its usage and cost, and the session's totals", () => {
  const model = fresh();
  model.apply([
    event("turn_started", { turn: 1, prompt: "a" }),
    event("turn_complete", {
      turn: 1,
      usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 2 },
      cost_usd: 0.5,
      total_usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 2 },
      total_cost_usd: 1.25,
      is_error: false,
      interrupted: true,
      files_changed: [{ path: "a.txt", change: "added", additions: 1, deletions: 0 }],
    }),
  ]);
  const turn = model.items[1]!;
  assert.equal(turn.kind, "turn");
  if (turn.kind !== "turn") return;
  assert.equal(turn.inputTokens, 12);
  assert.equal(turn.interrupted, true);
  assert.deepEqual(turn.filesChanged, [{ path: "a.txt", change: "added", additions: 1, deletions: 0 }]);
  assert.equal(model.state.totalCostUsd, 1.25);
  assert.equal(model.state.status, "idle");
});

test("malformed events become notices, never exceptions", () => {
  const model = fresh();
  model.apply([
    event("assistant", { content: "not a list", message_id: 7 }),
    event("user", { content: [null, 3, { type: "tool_result", tool_use_id: {}, content: { evil: true } }] }),
    event("permission_requested", { request_id: ["x"] }),
    event("permission_resolved", { request_id: "perm_nobody" }),
    event("turn_complete", { usage: "lots", total_usage: null, total_cost_usd: "free" }),
    event("something_new", {}),
  ]);
  assert.equal(model.eventCount, 6);
  assert.ok(model.items.every((item) => typeof item.key === "string"));
  assert.equal(model.state.totalCostUsd, 0);
});

test("an exit stops what was streaming and clears pending requests", () => {
  const model = fresh();
  model.apply([
    event("text_delta", { message_id: "m", index: 0, text: "half" }),
    event("permission_requested", { request_id: "perm_1", tool_name: "Bash", input: {}, suggestions: [], tool_use_id: null }),
    event("exit", { exit_code: 0 }),
  ]);
  assert.equal((model.items[0] as TextItem).streaming, false);
  assert.equal(model.pending.size, 0);
  assert.equal(model.state.status, "exited");
});

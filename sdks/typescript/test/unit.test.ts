// Tests that need no server: configuration, error mapping, the generated event types and the schema checker.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import * as cove from "../src/index.js";
import {
  AuthError,
  BY_CODE,
  Conflict,
  CoveError,
  DEFAULT_URL,
  EVENT_TYPES,
  NotFound,
  PathOutsideSandbox,
  ResumeNotFound,
  SandboxNotFound,
  SessionExited,
  SessionNotFound,
  errorFrom,
  resolveKey,
  resolveUrl,
} from "../src/index.js";
import type { AgentEvent, TurnCompleteEvent } from "../src/index.js";
import { eventValidator } from "./schema.js";

describe("connection settings", () => {
  const saved = { ...process.env };
  let home: string;

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "cove-home-"));
    for (const name of ["COVE_URL", "COVE_API_KEY", "COVE_HOME"]) delete process.env[name];
  });
  afterEach(() => {
    process.env = { ...saved };
    rmSync(home, { recursive: true, force: true });
  });

  test("the URL comes from the option, then COVE_URL, then the default", () => {
    assert.equal(resolveUrl(), DEFAULT_URL);
    process.env.COVE_URL = "http://cove.example:9000/";
    assert.equal(resolveUrl(), "http://cove.example:9000");
    assert.equal(resolveUrl("http://other:1"), "http://other:1");
  });

  test("a local server's admin key is read from $COVE_HOME/admin_key", () => {
    process.env.COVE_HOME = home;
    assert.equal(resolveKey("http://127.0.0.1:7420"), undefined);
    writeFileSync(join(home, "admin_key"), "cove_admin_123\n");
    assert.equal(resolveKey("http://127.0.0.1:7420"), "cove_admin_123");
    assert.equal(resolveKey("http://localhost:7420"), "cove_admin_123");
    assert.equal(resolveKey("http://cove.example:7420"), undefined, "never for a remote server");
    process.env.COVE_API_KEY = "from-env";
    assert.equal(resolveKey("http://127.0.0.1:7420"), "from-env");
    assert.equal(resolveKey("http://127.0.0.1:7420", "explicit"), "explicit");
  });
});

test("errors are typed by code, then by status", () => {
  assert.ok(errorFrom(404, "sandbox_not_found", "x") instanceof SandboxNotFound);
  assert.ok(errorFrom(404, "session_not_found", "x") instanceof SessionNotFound);
  assert.ok(errorFrom(404, "resume_not_found", "x") instanceof ResumeNotFound);
  assert.ok(errorFrom(409, "session_exited", "x") instanceof SessionExited);
  assert.ok(errorFrom(403, "path_outside_sandbox", "x") instanceof PathOutsideSandbox);
  assert.ok(errorFrom(401, "whatever", "x") instanceof AuthError);
  assert.ok(errorFrom(404, "not_found", "x") instanceof NotFound);
  assert.ok(errorFrom(409, "conflict", "x") instanceof Conflict);
  const error = errorFrom(500, "internal_error", "boom");
  assert.ok(error instanceof CoveError);
  assert.equal(error.code, "internal_error");
  assert.equal(error.status, 500);
  assert.equal(error.name, "ServerError");
  assert.equal(errorFrom(404, "sandbox_not_found", "x").name, "SandboxNotFound");
});

describe("errors follow the table of docs/names.md", () => {
  const names = readFileSync(fileURLToPath(new URL("../../../../docs/names.md", import.meta.url)), "utf8");
  const rows = [...names.matchAll(/^\| `(\w+)` \| (\d+|—) \| `(\w+)` \| `(\w+)` \|$/gm)].map(
    ([, code, status, name, parent]) => ({ code: code!, status: status === "—" ? 0 : Number(status), name: name!, parent: parent! }),
  );
  const exported = cove as unknown as Record<string, unknown>;

  test("each code gives the documented class, exported under its name", () => {
    assert.ok(rows.length > 40);
    for (const { code, status, name, parent } of rows) {
      const error = errorFrom(status, code, "a message");
      assert.equal(error.constructor.name, name, code);
      assert.equal(Object.getPrototypeOf(error.constructor).name, parent, code);
      assert.equal(exported[name], error.constructor, `${name} is exported`);
      assert.deepEqual([error.code, error.message, error.status], [code, "a message", status || undefined]);
    }
  });

  test("the table in the SDK is the documented one", () => {
    const documented = Object.fromEntries(rows.map(({ code, name }) => [code, name]));
    const inSdk = Object.fromEntries(Object.entries(BY_CODE).map(([code, cls]) => [code, cls.name]));
    assert.deepEqual(inSdk, documented);
  });

  test("an unknown code keeps its code and gets the class of its status", () => {
    for (const [status, cls] of [[404, cove.NotFound], [429, cove.RateLimited], [502, cove.ServerError], [418, CoveError]] as const) {
      const error = errorFrom(status, "something_new", "news");
      assert.equal(error.constructor, cls);
      assert.deepEqual([error.code, error.message, error.status], ["something_new", "news", status]);
    }
    assert.equal(new cove.ConnectionLost("x").code, "connection_lost");
    assert.equal(new cove.DiskQuotaExceeded("x").name, "DiskQuotaExceeded");
  });
});

test("src/events.ts is generated from the current docs/events.schema.json", () => {
  const script = fileURLToPath(new URL("../../scripts/gen-events.mjs", import.meta.url));
  execFileSync(process.execPath, [script, "--check"], { stdio: "pipe" });
});

test("the event types cover every event of the schema", () => {
  const schema = eventValidator().root as { oneOf: { $ref: string }[] };
  assert.deepEqual(
    [...EVENT_TYPES],
    schema.oneOf.map((v) => v.$ref.replace("#/$defs/", "")),
  );
});

describe("the schema checker", () => {
  const validator = eventValidator();
  const base = { seq: 3, session_id: "ses_1", time: "2026-01-01T00:00:00.123Z" };
  const turnComplete: TurnCompleteEvent = {
    ...base,
    type: "turn_complete",
    turn: 1,
    claude_session_id: "6f1c2a3e-0000-4000-8000-000000000000",
    usage: {},
    cost_usd: 0,
    total_usage: { input_tokens: 1, output_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
    total_cost_usd: 0,
    is_error: false,
    interrupted: false,
  };

  test("accepts well-formed events", () => {
    const events: AgentEvent[] = [
      turnComplete,
      { ...base, type: "interrupted", turn: 2 },
      { ...base, type: "assistant", model: "m", content: [{ type: "text", text: "hi" }], extra: 1 },
      { ...base, type: "exit", exit_code: 0 },
    ];
    for (const event of events) assert.deepEqual(validator.validate(event), []);
    assert.deepEqual(validator.validate({ type: "scrollback_end", last_seq: 0 }), []);
  });

  test("rejects malformed ones, naming the field", () => {
    assert.match(validator.validate({ ...turnComplete, turn: 0 }).join("\n"), /\$\.turn: 0 < 1/);
    assert.match(validator.validate({ ...turnComplete, surprise: true }).join("\n"), /surprise/);
    assert.match(validator.validate({ ...base, type: "exit" }).join("\n"), /missing exit_code/);
    assert.match(validator.validate({ ...base, type: "exit", exit_code: 0, time: "yesterday" }).join("\n"), /date-time/);
    assert.match(
      validator.validate({ ...base, type: "assistant", model: "m", content: [{ type: "text" }] }).join("\n"),
      /content\[0\]/,
    );
    assert.notDeepEqual(validator.validate({ ...base, type: "no_such_event" }), []);
  });
});

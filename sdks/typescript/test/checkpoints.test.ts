// Checkpoints and forks, and resuming a conversation in a fork. Skipped while the server lacks the routes.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { CheckpointNotFound, Sandbox, type TurnCompleteEvent } from "../src/index.js";
import { Recorder } from "./agent-helpers.js";
import { type TestServer, startServer } from "./harness.js";

let server: TestServer;
const NO_CHECKPOINTS = "the server has no checkpoint routes yet (POST /v1/sandboxes/{id}/checkpoints)";

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("checkpoints", { timeout: 600_000 }, () => {
  test("checkpoint a sandbox and create another from it", async (t) => {
    if (!server.hasCheckpoints) return t.skip(NO_CHECKPOINTS);
    const original = await Sandbox.create({ client: server.client });
    await original.files.write("state/data.txt", "saved state\n");
    const checkpoint = await original.checkpoint("with-data");
    assert.ok(checkpoint.id);
    assert.equal(checkpoint.sandboxId, original.id);
    assert.equal(checkpoint.name, "with-data");
    assert.equal(typeof checkpoint.createdAt, "number");
    assert.ok(checkpoint.sizeBytes >= 0);

    const fork = await Sandbox.create({ client: server.client, fromCheckpoint: checkpoint.id });
    assert.notEqual(fork.id, original.id);
    assert.equal(await fork.files.readText("state/data.txt"), "saved state\n");
    // The two are independent from here on.
    await fork.files.write("state/data.txt", "changed in the fork\n");
    assert.equal(await original.files.readText("state/data.txt"), "saved state\n");
    await fork.kill();
    await original.kill();
  });

  test("list, get, restore and delete checkpoints", async (t) => {
    if (!server.hasCheckpoints) return t.skip(NO_CHECKPOINTS);
    const sandbox = await Sandbox.create({ client: server.client });
    await sandbox.files.write("state.txt", "first\n");
    const first = await sandbox.checkpoint("first");
    await sandbox.files.write("state.txt", "second\n");
    const second = await sandbox.checkpoint();
    assert.deepEqual(
      (await sandbox.checkpoints()).map((c) => [c.id, c.name]),
      [
        [first.id, "first"],
        [second.id, null],
      ],
    );
    assert.deepEqual(await sandbox.getCheckpoint(first.id), first);

    const restored = await sandbox.restore(first.id);
    assert.equal(restored.id, sandbox.id);
    assert.equal(restored.state, "running");
    assert.equal(await sandbox.files.readText("state.txt"), "first\n");

    assert.equal((await sandbox.deleteCheckpoint(second.id)).id, second.id);
    await assert.rejects(sandbox.getCheckpoint(second.id), CheckpointNotFound);
    assert.deepEqual(
      (await sandbox.checkpoints()).map((c) => c.id),
      [first.id],
    );
    await sandbox.kill();
  });

  test("resume a conversation in a sandbox forked from a checkpoint", async (t) => {
    if (!server.hasCheckpoints) return t.skip(NO_CHECKPOINTS);
    if (!server.hasAgents) return t.skip("the server has no agent-session routes yet");
    const original = await Sandbox.create({ client: server.client });
    let resumeId: string | null = null;
    const first = new Recorder();
    const session = await original.agent.start({
      prompt: "Remember the word mango.",
      ...first.callbacks,
      onEvent: (event) => {
        first.callbacks.onEvent(event);
        if (event.type === "turn_complete") resumeId = event.claude_session_id;
      },
    });
    await session.done;
    await session.kill();
    assert.ok(resumeId);

    const checkpoint = await original.checkpoint();
    const fork = await Sandbox.create({ client: server.client, fromCheckpoint: checkpoint.id });
    const second = new Recorder();
    const resumed = await fork.agent.start({ resume: resumeId, prompt: "@recall", ...second.callbacks });
    const done = (await resumed.done) as TurnCompleteEvent;
    assert.equal(done.is_error, false);
    assert.match(second.textOfTurn(1), /mango/);
    await resumed.kill();
    await fork.kill();
    await original.kill();
  });
});

// Tenants and scoped tokens from TypeScript: a tenant's key sees its own sandboxes only, and a token minted with
// `createToken` is taken wherever a key is, for what its scopes name.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { AuthError, CoveClient, Forbidden, Sandbox, SandboxNotFound } from "../src/index.js";
import { type TestServer, startServer } from "./harness.js";

let server: TestServer;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** A tenant's key, made with the admin's. */
async function tenant(name: string): Promise<{ id: string; key: string }> {
  return server.client.request<{ id: string; key: string }>("POST", "/v1/keys", { json: { name } });
}

describe("tenants and tokens", { timeout: 300_000 }, () => {
  test("a tenant sees its own sandboxes; another tenant gets SandboxNotFound", async () => {
    const alice = await tenant("alice");
    const bob = await tenant("bob");
    const mine = await Sandbox.create({ url: server.url, apiKey: alice.key, network: "none" });
    assert.equal(mine.info.tenantId, alice.id);
    const bobs = new CoveClient({ url: server.url, apiKey: bob.key });
    await assert.rejects(Sandbox.connect(mine.id, { client: bobs }), SandboxNotFound);
    assert.deepEqual(await Sandbox.list({ client: bobs }), []);
    const everyone = await Sandbox.list({ client: server.client, tenantId: alice.id });
    assert.deepEqual(
      everyone.map((s) => s.id),
      [mine.id],
    );
    await mine.kill();
  });

  test("createToken: a token opens what its scopes name, as a key would be used", async () => {
    const alice = await tenant("carol");
    const sandbox = await Sandbox.create({ url: server.url, apiKey: alice.key, network: "none" });
    const viewer = await sandbox.createToken({ scopes: ["read"], ttlS: 600 });
    assert.match(viewer.token, /^cove_tok_/);
    assert.deepEqual([viewer.sandboxId, viewer.sessionId, viewer.scopes], [sandbox.id, null, ["read"]]);
    const seen = await Sandbox.connect(sandbox.id, { url: server.url, apiKey: viewer.token });
    assert.equal(seen.info.state, "running");
    await assert.rejects(seen.exec.run("true"), Forbidden);
    await assert.rejects(seen.kill(), Forbidden);

    const session = await sandbox.agent.start({});
    const watcher = await session.createToken({ scopes: ["read"] });
    assert.equal(watcher.sessionId, session.sessionId);
    const page = await Sandbox.connect(sandbox.id, { url: server.url, apiKey: watcher.token });
    const followed = await page.agent.attach(session.sessionId);
    assert.equal(followed.sessionId, session.sessionId);
    followed.close();
    await assert.rejects(page.files.list(), Forbidden); // a session's token: not the sandbox's files

    await server.client.request("DELETE", `/v1/tokens/${viewer.id}`);
    await assert.rejects(Sandbox.connect(sandbox.id, { url: server.url, apiKey: viewer.token }), AuthError);
    await assert.rejects(seen.exec.start("true"), AuthError); // the WebSocket refusal is the server's own error
    session.close();
    await sandbox.kill();
  });
});

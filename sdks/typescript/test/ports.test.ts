// Published ports: expose, open through the preview URL, list, close.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { PortNotFound, Sandbox } from "../src/index.js";
import { type TestServer, startServer } from "./harness.js";

let server: TestServer;

before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("ports", { timeout: 120_000 }, () => {
  test("expose a port, open it with its token, make it public, list and close it", async () => {
    const sandbox = await Sandbox.create({ client: server.client, network: "none" });
    await sandbox.files.write("index.html", "hello from the sandbox\n");
    await sandbox.exec.background("python3 -m http.server 8000 --bind 127.0.0.1", { cwd: "/workspace" });

    const preview = await sandbox.ports.expose(8000, { public: false });
    assert.equal(preview.port, 8000);
    assert.equal(preview.public, false);
    assert.equal(preview.url, `${server.url}/v1/sandboxes/${sandbox.id}/ports/8000/`);
    assert.match(preview.token, /^cove_tok_/);
    assert.ok(preview.expiresAt > Date.now() / 1000);

    const withToken = { headers: { "X-Cove-Preview-Token": preview.token } };
    let page = await fetch(preview.url, withToken);
    for (let tries = 0; page.status === 502 && tries < 300; tries++) {
      await sleep(100);
      page = await fetch(preview.url, withToken);
    }
    assert.equal(page.status, 200);
    assert.equal(await page.text(), "hello from the sandbox\n");
    assert.equal((await fetch(preview.url)).status, 401);

    const made = await sandbox.ports.expose(8000, { public: true });
    assert.deepEqual(made, { ...preview, public: true });
    assert.equal((await fetch(preview.url)).status, 200);
    assert.deepEqual(await sandbox.ports.list(), [made]);

    assert.deepEqual(await sandbox.ports.close(8000), made);
    assert.equal((await fetch(preview.url)).status, 404);
    assert.deepEqual(await sandbox.ports.list(), []);
    await assert.rejects(sandbox.ports.close(8000), PortNotFound);
    await sandbox.kill();
  });
});

// Terminals against a real server: an interactive program typed into, resized, re-attached with its recent
// output replayed, and killed.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { PtyNotFound, Sandbox } from "../src/index.js";
import { type TestServer, startServer } from "./harness.js";

let server: TestServer;
let sandbox: Sandbox;

before(async () => {
  server = await startServer();
  sandbox = await Sandbox.create({ client: server.client });
});
after(async () => {
  await server?.stop();
});

const text = (data: Uint8Array) => Buffer.from(data).toString();

describe("terminals", () => {
  test("python3 -q typed into, resized, re-attached and exited", async () => {
    const seen: Uint8Array[] = [];
    const terminal = await sandbox.pty.create({ command: ["python3", "-q"], cols: 100, rows: 30, onData: (d) => seen.push(d) });
    await terminal.readUntil(">>> ");
    await terminal.write("import os; os.get_terminal_size()\r");
    assert.match(text(await terminal.readUntil(">>> ")), /columns=100, lines=30/);

    await terminal.resize(132, 43);
    await terminal.write("os.get_terminal_size()\r");
    await terminal.readUntil("columns=132, lines=43");
    await terminal.readUntil(">>> ");
    await terminal.write("print('before' + ' close')\r");
    await terminal.readUntil("before close");
    terminal.close();
    assert.ok(seen.length > 0);

    const listed = await sandbox.pty.list();
    assert.deepEqual(
      listed.map((t) => [t.ptyId, t.running]),
      [[terminal.ptyId, true]],
    );

    const again = await sandbox.pty.attach(terminal.ptyId);
    assert.match(text(await again.readUntil("before close")), /columns=100, lines=30/);
    await again.readUntil(">>> ");
    await again.write("exit(4)\r");
    const info = await again.wait();
    assert.equal(info.running, false);
    assert.equal(info.exitCode, 4);
  });

  test("a dropped connection re-attaches from its offset", async () => {
    const terminal = await sandbox.pty.create({ command: "stty -echo; read a; echo got-$a; read b; echo got-$b" });
    await terminal.write("one\r");
    await terminal.readUntil("got-one\r\n");
    terminal.dropConnection();
    await terminal.write("two\r"); // waits for the re-attach
    assert.equal(text(await terminal.readUntil("got-two\r\n")), "got-two\r\n");
    assert.equal((await terminal.wait()).exitCode, 0);
  });

  test("kill, and an unknown terminal", async () => {
    const terminal = await sandbox.pty.create({ command: "echo up; sleep 600" });
    await terminal.readUntil("up");
    await sandbox.pty.kill(terminal.ptyId);
    assert.equal((await terminal.wait()).signal, 9);
    await assert.rejects(sandbox.pty.get("pty999"), PtyNotFound);
  });
});

// Sandboxes, exec and files against a real server.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  AuthError,
  CommandTimeout,
  ConnectionLost,
  FileNotFound,
  NotFound,
  PathOutsideSandbox,
  Sandbox,
  SandboxNotFound,
  SandboxNotRunning,
} from "../src/index.js";
import { type TestServer, startServer } from "./harness.js";

let server: TestServer;
let sandbox: Sandbox;

before(async () => {
  server = await startServer();
  sandbox = await Sandbox.create({ client: server.client, labels: { suite: "ts" }, env: { GREETING: "hello" } });
});
after(async () => {
  await server?.stop();
});

describe("sandboxes", () => {
  test("create returns a running sandbox; connect and list find it", async () => {
    assert.match(sandbox.id, /^sbx_/);
    assert.equal(sandbox.info.state, "running");
    assert.deepEqual(sandbox.info.labels, { suite: "ts" });

    const again = await Sandbox.connect(sandbox.id, { url: server.url, apiKey: server.apiKey });
    assert.equal(again.id, sandbox.id);
    assert.equal(again.info.cwd, "/workspace");

    const listed = await Sandbox.list({ client: server.client, labels: { suite: "ts" } });
    assert.deepEqual(
      listed.map((s) => s.id),
      [sandbox.id],
    );
    assert.deepEqual(await Sandbox.list({ client: server.client, labels: { suite: "none" } }), []);
  });

  test("the key comes from COVE_URL and $COVE_HOME/admin_key when no option names them", async () => {
    const saved = { ...process.env };
    try {
      delete process.env.COVE_API_KEY;
      process.env.COVE_URL = server.url;
      process.env.COVE_HOME = server.home;
      const listed = await Sandbox.list();
      assert.ok(listed.some((s) => s.id === sandbox.id));
    } finally {
      process.env = saved;
    }
  });

  test("errors are typed", async () => {
    await assert.rejects(Sandbox.connect("sbx_missing", { client: server.client }), SandboxNotFound);
    await assert.rejects(Sandbox.connect(sandbox.id, { url: server.url, apiKey: "wrong" }), AuthError);
  });

  test("kill stops it; a killed sandbox refuses work", async () => {
    const doomed = await Sandbox.create({ client: server.client, labels: { suite: "kill" } });
    const info = await doomed.kill();
    assert.notEqual(info.state, "running");
    assert.equal(await doomed.isRunning(), false);
    await assert.rejects(doomed.exec.run("true"), SandboxNotRunning);
    const running = await Sandbox.list({ client: server.client, state: "running" });
    assert.ok(!running.some((s) => s.id === doomed.id));
  });
});

describe("exec", () => {
  test("run returns exit code and output; env, cwd and stdin apply", async () => {
    const result = await sandbox.exec.run("echo $GREETING $EXTRA; pwd; echo oops >&2; exit 3", {
      env: { EXTRA: "world" },
      cwd: "/tmp",
    });
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, "hello world\n/tmp\n");
    assert.equal(result.stderr, "oops\n");
    assert.equal(result.timedOut, false);
    assert.equal((await sandbox.exec.run(["cat"], { stdin: "piped" })).stdout, "piped");
  });

  test("a command past its timeout throws CommandTimeout", async () => {
    await assert.rejects(sandbox.exec.run("sleep 10", { timeout: 0.5 }), CommandTimeout);
    const result = await sandbox.exec.run("sleep 10", { timeout: 0.5, checkTimeout: false });
    assert.equal(result.timedOut, true);
  });

  test("start streams output and takes stdin", async () => {
    const seen: string[] = [];
    let exitCode: number | null | undefined;
    const cat = await sandbox.exec.start("cat; echo done >&2", {
      onStdout: (data) => seen.push(Buffer.from(data).toString()),
      onExit: (code) => (exitCode = code),
    });
    assert.match(cat.processId, /.+/);
    await cat.sendStdin("line one\n");
    await cat.sendStdin(new TextEncoder().encode("line two\n"));
    await cat.closeStdin();
    const result = await cat.wait();
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdoutText, "line one\nline two\n");
    assert.equal(result.stderrText, "done\n");
    assert.equal(seen.join(""), "line one\nline two\n");
    assert.equal(exitCode, 0);
  });

  test("a streamed process can be iterated", async () => {
    const handle = await sandbox.exec.start("for i in 1 2 3; do echo $i; sleep 0.1; done");
    let text = "";
    for await (const chunk of handle) text += chunk.text;
    assert.equal(text, "1\n2\n3\n");
  });

  test("a dropped stream re-attaches from its offsets: nothing lost, nothing repeated", async () => {
    const handle = await sandbox.exec.start("for i in $(seq 1 30); do echo line $i; sleep 0.05; done");
    await new Promise((r) => setTimeout(r, 400));
    handle.dropConnection();
    await new Promise((r) => setTimeout(r, 300));
    handle.dropConnection();
    const result = await handle.wait();
    const expected = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");
    assert.equal(result.stdoutText, expected);
  });

  test("background, list, attach from an offset, kill", async () => {
    const info = await sandbox.exec.background("echo first; echo second; sleep 30", { tag: "bg" });
    assert.equal(info.running, true);
    assert.equal(info.tag, "bg");
    const listed = await sandbox.exec.list();
    assert.ok(listed.some((p) => p.id === info.id));

    // Wait until both lines are out, then attach from the offset after "first\n".
    for (let i = 0; i < 50 && (await sandbox.exec.get(info.id)).stdoutBytes < 13; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const handle = await sandbox.exec.attach(info.id, { stdoutOffset: "first\n".length });
    const chunks: string[] = [];
    const reading = (async () => {
      for await (const chunk of handle) chunks.push(chunk.text);
    })();
    const killed = await sandbox.exec.kill(info.id);
    assert.equal(killed.id, info.id);
    const result = await handle.wait();
    await reading;
    assert.equal(chunks.join(""), "second\n");
    assert.equal(result.process.running, false);
    assert.equal(result.process.signal, 9);
  });
});

describe("one shape for one thing", () => {
  test("exec.run and a handle's wait() give the same fields, under the same names", async () => {
    const ran = await sandbox.exec.run("echo same; echo err >&2");
    const handle = await sandbox.exec.start("echo same; echo err >&2");
    const waited = await handle.wait();
    const fields = Object.keys(ran).filter((key) => key !== "oomKilled");
    for (const key of fields) {
      assert.equal(typeof (waited as unknown as Record<string, unknown>)[key], typeof (ran as unknown as Record<string, unknown>)[key], key);
    }
    assert.deepEqual([waited.stdout, waited.stderr, waited.exitCode], [ran.stdout, ran.stderr, ran.exitCode]);
    assert.deepEqual([waited.stdout, waited.timedOut, waited.truncated], ["same\n", false, false]);
    assert.equal(new TextDecoder().decode(waited.stdoutData), "same\n");
    // A process id is processId everywhere: the result, the process, the handle.
    assert.equal(waited.processId, handle.processId);
    assert.equal((await sandbox.exec.get(waited.processId)).processId, waited.processId);
  });

  test("an unreachable server says how to start one", async () => {
    await assert.rejects(Sandbox.list({ url: "http://127.0.0.1:9", apiKey: "k" }), (error: unknown) => {
      assert.ok(error instanceof ConnectionLost);
      assert.match(error.message, /cannot reach the Cove server at http:\/\/127\.0\.0\.1:9 .*start one with `cove serve`/);
      return true;
    });
  });
});

describe("files", () => {
  test("download writes the file once it is complete, and nothing when it fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cove-download-"));
    try {
      await sandbox.files.write("to-download.txt", "downloaded\n");
      const seen: [number, number | null][] = [];
      const size = await sandbox.files.download("to-download.txt", join(dir, "here.txt"), {
        onProgress: (done, total) => seen.push([done, total]),
      });
      assert.equal(size, 11);
      assert.equal(readFileSync(join(dir, "here.txt"), "utf8"), "downloaded\n");
      assert.deepEqual(seen.at(-1), [11, 11]);
      writeFileSync(join(dir, "kept.txt"), "an older copy\n");
      await assert.rejects(sandbox.files.download("missing.txt", join(dir, "kept.txt")), FileNotFound);
      await assert.rejects(sandbox.files.download("/etc/passwd", join(dir, "passwd")), PathOutsideSandbox);
      assert.deepEqual(readdirSync(dir).sort(), ["here.txt", "kept.txt"]);
      assert.equal(readFileSync(join(dir, "kept.txt"), "utf8"), "an older copy\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("write and read round trip, text and bytes", async () => {
    const info = await sandbox.files.write("notes/hello.txt", "hello, files\n");
    assert.equal(info.path, "/workspace/notes/hello.txt");
    assert.equal(info.type, "file");
    assert.equal(await sandbox.files.readText("notes/hello.txt"), "hello, files\n");

    const bytes = new Uint8Array(256 * 1024).map((_, i) => (i * 7) % 256);
    await sandbox.files.write("blob.bin", bytes);
    assert.deepEqual(await sandbox.files.read("blob.bin"), bytes);
    const streamed: Uint8Array[] = [];
    for await (const chunk of sandbox.files.stream("blob.bin")) streamed.push(chunk);
    assert.deepEqual(new Uint8Array(Buffer.concat(streamed)), bytes);

    async function* chunks() {
      yield new TextEncoder().encode("part one, ");
      yield new TextEncoder().encode("part two\n");
    }
    await sandbox.files.write("streamed.txt", chunks());
    assert.equal(await sandbox.files.readText("/workspace/streamed.txt"), "part one, part two\n");
    assert.equal((await sandbox.exec.run("cat notes/hello.txt")).stdout, "hello, files\n");
  });

  test("write with a mode", async () => {
    await sandbox.files.write("run.sh", "#!/bin/sh\necho ran\n", { mode: 0o755 });
    assert.equal((await sandbox.files.stat("run.sh")).mode & 0o777, 0o755);
    assert.equal((await sandbox.exec.run("./run.sh")).stdout, "ran\n");
  });

  test("list, stat, exists, mkdir, rename, remove", async () => {
    const dir = await sandbox.files.mkdir("tree/a/b");
    assert.equal(dir.type, "dir");
    await sandbox.files.write("tree/a/b/leaf.txt", "leaf");
    const entries = await sandbox.files.list("tree/a/b");
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.size]),
      [["leaf.txt", "file", 4]],
    );
    assert.equal(await sandbox.files.exists("tree/a/b/leaf.txt"), true);
    assert.equal(await sandbox.files.exists("tree/nope"), false);

    const moved = await sandbox.files.rename("tree/a/b/leaf.txt", "tree/leaf2.txt");
    assert.equal(moved.path, "/workspace/tree/leaf2.txt");
    assert.equal(await sandbox.files.exists("tree/a/b/leaf.txt"), false);
    assert.equal((await sandbox.files.stat("tree/leaf2.txt")).size, 4);

    await sandbox.files.remove("tree/leaf2.txt");
    await assert.rejects(sandbox.files.stat("tree/leaf2.txt"), NotFound);
    await sandbox.files.remove("tree", { recursive: true });
    assert.equal(await sandbox.files.exists("tree"), false);
  });

  test("errors are typed", async () => {
    await assert.rejects(sandbox.files.read("missing.txt"), FileNotFound);
    await assert.rejects(sandbox.files.read("../../etc/passwd"), PathOutsideSandbox);
    await assert.rejects(sandbox.files.write("/etc/evil", "x"), PathOutsideSandbox);
  });
});

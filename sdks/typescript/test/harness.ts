/**
 * A real Cove server for the tests: `<repo>/.venv/bin/python -m cove serve --port <free port>` with its own
 * COVE_HOME, no ANTHROPIC_API_KEY (so agents talk to the built-in model simulator). One per test file.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { CoveClient, Sandbox } from "../src/index.js";

/** The repository root: the nearest parent holding pyproject.toml (or `COVE_REPO`). */
export function repoRoot(): string {
  if (process.env.COVE_REPO) return process.env.COVE_REPO;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pyproject.toml"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (pyproject.toml)");
    dir = parent;
  }
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running server: its URL, key, a client for it, and `stop()`. */
export interface TestServer {
  url: string;
  apiKey: string;
  home: string;
  client: CoveClient;
  /** Paths of the OpenAPI description: to tell which routes this server has. */
  paths: string[];
  /** Whether the agent-session routes are served (`docs/agent-api.md`). */
  hasAgents: boolean;
  /** Whether the checkpoint routes are served. */
  hasCheckpoints: boolean;
  /** Kill every sandbox it still runs, then the server; remove its home. */
  stop(): Promise<void>;
}

/** Start a server and wait for `GET /healthz`. */
export async function startServer(): Promise<TestServer> {
  const root = repoRoot();
  const python = resolve(root, ".venv/bin/python");
  if (!existsSync(python)) throw new Error(`${python} is missing: run \`make install\` first`);
  const home = mkdtempSync(join(tmpdir(), "cove-ts-"));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, COVE_HOME: home };
  for (const name of ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "COVE_URL", "COVE_API_KEY"]) delete env[name];
  const log: string[] = [];
  const child: ChildProcess = spawn(python, ["-m", "cove", "serve", "--port", String(port)], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d: Buffer) => log.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => log.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`cove serve exited with ${child.exitCode}:\n${log.join("")}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok && existsSync(join(home, "admin_key"))) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`cove serve did not become healthy:\n${log.join("")}`);
    }
    await sleep(100);
  }
  const apiKey = readFileSync(join(home, "admin_key"), "utf8").trim();
  const client = new CoveClient({ url, apiKey });
  const openapi = (await (await fetch(`${url}/openapi.json`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as {
    paths: Record<string, unknown>;
  };
  const paths = Object.keys(openapi.paths);
  return {
    url,
    apiKey,
    home,
    client,
    paths,
    hasAgents: paths.some((p) => /^\/v1\/sandboxes\/\{[^}]+\}\/agent$/.test(p)),
    hasCheckpoints: paths.some((p) => /^\/v1\/sandboxes\/\{[^}]+\}\/checkpoints$/.test(p)),
    async stop() {
      // Sandboxes outlive the server by design (detached supervisors): kill them first.
      try {
        for (const info of await Sandbox.list({ client, state: "running" })) {
          await (await Sandbox.connect(info.id, { client })).kill().catch(() => undefined);
        }
      } catch {
        // the server may already be gone
      }
      child.kill("SIGTERM");
      const exited = new Promise((r) => child.once("exit", r));
      if (child.exitCode === null) await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    },
  };
}

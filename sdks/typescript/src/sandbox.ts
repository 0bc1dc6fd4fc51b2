/**
 * `Sandbox`: the entry point. Create, connect to, list and kill sandboxes; each carries `exec`, `files`, `pty`,
 * `agent` and `ports` for what runs inside it.
 */

import { Agent } from "./agent.js";
import {
  createCheckpoint,
  deleteCheckpoint,
  getCheckpoint,
  listCheckpoints,
  restoreCheckpoint,
} from "./checkpoints.js";
import { Exec } from "./exec.js";
import { Files } from "./files.js";
import { Network } from "./network.js";
import { Pty } from "./pty.js";
import { Ports } from "./ports.js";
import { type TokenOptions, mintToken } from "./tokens.js";
import { type ConnectionOptions, CoveClient } from "./transport.js";
import {
  type Checkpoint,
  type Limits,
  type NetworkMode,
  type NetworkPolicy,
  type SandboxInfo,
  type SandboxState,
  type TokenInfo,
  limitsToWire,
  sandboxInfoFrom,
} from "./types.js";

/** Options of `Sandbox.create`; all optional. */
export interface SandboxCreateOptions extends ConnectionOptions {
  /** Environment for every command. */
  env?: Record<string, string>;
  /** Default working directory, under /workspace, /home/user or /tmp (default /workspace). */
  cwd?: string;
  /** Seconds until the sandbox is killed. */
  timeout?: number;
  /** Seconds without API activity before it is killed. */
  idleTimeout?: number;
  /** Metadata to filter `Sandbox.list` by. */
  labels?: Record<string, string>;
  /** Resource limits. */
  limits?: Limits;
  /**
   * `"egress"` (outbound internet, never the host or private ranges), `"none"`, `"host"` (if the server allows
   * it), or `{ mode: "egress", allow: [...], deny: [...] }`; left out, the server's default (`egress` unless set).
   */
  network?: NetworkMode | Partial<NetworkPolicy>;
  /** Start from a checkpoint's files (an id from `sandbox.checkpoint()`). */
  fromCheckpoint?: string;
}

/** Options of `Sandbox.list`. */
export interface SandboxListOptions extends ConnectionOptions {
  state?: SandboxState;
  labels?: Record<string, string>;
  /** The admin's filter: only this tenant's sandboxes (a key's id). */
  tenantId?: string;
}

/**
 * A sandbox on a Cove server.
 *
 * @example
 * const sandbox = await Sandbox.create({ limits: { memoryMb: 512 } });
 * console.log((await sandbox.exec.run("uname -a")).stdout);
 * await sandbox.kill();
 */
export class Sandbox {
  /** The sandbox as last reported (refreshed by `refresh`, `setTimeout`, `kill`). */
  info: SandboxInfo;
  /** Commands: `run`, `start` (streaming), `background`, `attach`, `list`, `get`, `kill`. */
  readonly exec: Exec;
  /** Files: `read`, `write`, `download`, `list`, `stat`, `exists`, `mkdir`, `remove`, `rename`. */
  readonly files: Files;
  /** Agent sessions: `start`, `attach`, `list`, `get`. */
  readonly agent: Agent;
  /** The network's rules: `update`. */
  readonly network: Network;
  /** Terminals: `create`, `attach`, `list`, `get`, `resize`, `kill`. */
  readonly pty: Pty;
  /** Published ports (preview URLs): `expose`, `list`, `close`. */
  readonly ports: Ports;

  /** @internal Use `Sandbox.create` or `Sandbox.connect`. */
  constructor(
    readonly client: CoveClient,
    info: SandboxInfo,
  ) {
    this.info = info;
    this.exec = new Exec(client, info.id);
    this.files = new Files(client, info.id);
    this.agent = new Agent(client, info.id);
    this.network = new Network(client, info.id);
    this.pty = new Pty(client, info.id);
    this.ports = new Ports(client, info.id);
  }

  /** The sandbox id (`sbx_…`). */
  get id(): string {
    return this.info.id;
  }

  /** Same as `id`, under the name other sandbox SDKs use. */
  get sandboxId(): string {
    return this.info.id;
  }

  /**
   * Create and start a sandbox; it is running when this resolves.
   *
   * @example
   * const sandbox = await Sandbox.create({ labels: { team: "infra" }, limits: { memoryMb: 512, pids: 256 } });
   * const fork = await Sandbox.create({ fromCheckpoint: (await sandbox.checkpoint()).id });
   */
  static async create(options: SandboxCreateOptions = {}): Promise<Sandbox> {
    const client = CoveClient.from(options);
    const body: Record<string, unknown> = {
      env: options.env ?? {},
      cwd: options.cwd ?? "/workspace",
      timeout: options.timeout ?? null,
      idle_timeout: options.idleTimeout ?? null,
      labels: options.labels ?? {},
      limits: limitsToWire(options.limits),
      network: options.network ?? null,
    };
    if (options.fromCheckpoint !== undefined) body.from_checkpoint = options.fromCheckpoint;
    return new Sandbox(client, sandboxInfoFrom(await client.request("POST", "/v1/sandboxes", { json: body })));
  }

  /** A sandbox that already exists; throws `SandboxNotFound` for an unknown id. */
  static async connect(sandboxId: string, options: ConnectionOptions = {}): Promise<Sandbox> {
    const client = CoveClient.from(options);
    return new Sandbox(client, sandboxInfoFrom(await client.request("GET", `/v1/sandboxes/${sandboxId}`)));
  }

  /**
   * The sandboxes of the server, optionally filtered by state and labels.
   *
   * @example
   * const running = await Sandbox.list({ state: "running", labels: { team: "infra" } });
   */
  static async list(options: SandboxListOptions = {}): Promise<SandboxInfo[]> {
    const client = CoveClient.from(options);
    const label = Object.entries(options.labels ?? {}).map(([key, value]) => `${key}=${value}`);
    const reply = await client.request<{ sandboxes: Record<string, unknown>[] }>("GET", "/v1/sandboxes", {
      query: { state: options.state, label, tenant_id: options.tenantId },
    });
    return reply.sandboxes.map(sandboxInfoFrom);
  }

  /** The sandbox as the server reports it now. */
  async refresh(): Promise<SandboxInfo> {
    this.info = sandboxInfoFrom(await this.client.request("GET", `/v1/sandboxes/${this.id}`));
    return this.info;
  }

  /** Whether the sandbox is running now. */
  async isRunning(): Promise<boolean> {
    return (await this.refresh()).state === "running";
  }

  /** Kill the sandbox in `timeout` seconds from now (`null`: never). */
  async setTimeout(timeout: number | null): Promise<SandboxInfo> {
    const reply = await this.client.request("POST", `/v1/sandboxes/${this.id}/timeout`, { json: { timeout } });
    this.info = sandboxInfoFrom(reply as Record<string, unknown>);
    return this.info;
  }

  /** Stop the sandbox and everything in it. */
  async kill(): Promise<SandboxInfo> {
    this.info = sandboxInfoFrom(await this.client.request("DELETE", `/v1/sandboxes/${this.id}`));
    return this.info;
  }

  /**
   * A token for this sandbox alone (or, with `sessionId`, one agent session in it): hand `token` to a browser,
   * or to any client as its `apiKey`, without the key behind it. Needs an API key (a token mints none).
   *
   * @example
   * const viewer = await sandbox.createToken({ scopes: ["read"], ttlS: 600 });
   * const readOnly = await Sandbox.connect(sandbox.id, { apiKey: viewer.token });
   */
  async createToken(options: TokenOptions & { sessionId?: string }): Promise<TokenInfo & { token: string }> {
    return mintToken(this.client, this.id, options.sessionId ?? null, options);
  }

  /**
   * Save the sandbox's state as a checkpoint to create new sandboxes from.
   *
   * @example
   * const checkpoint = await sandbox.checkpoint("after-setup");
   * const copy = await Sandbox.create({ fromCheckpoint: checkpoint.id });
   */
  async checkpoint(name?: string): Promise<Checkpoint> {
    return createCheckpoint(this.client, this.id, name);
  }

  /** This sandbox's checkpoints, oldest first. */
  async checkpoints(): Promise<Checkpoint[]> {
    return listCheckpoints(this.client, this.id);
  }

  /** One checkpoint; throws `CheckpointNotFound` for an unknown (or deleted) id. */
  async getCheckpoint(checkpointId: string): Promise<Checkpoint> {
    return getCheckpoint(this.client, checkpointId);
  }

  /**
   * Delete a checkpoint. Always allowed: forks of it keep their files, whose layers are freed with the last
   * sandbox or checkpoint that uses them.
   */
  async deleteCheckpoint(checkpointId: string): Promise<Checkpoint> {
    return deleteCheckpoint(this.client, checkpointId);
  }

  /**
   * Put this sandbox's files back to a checkpoint, in place (same id). Every process is killed and a fresh
   * supervisor starts: processes are not part of a checkpoint, and /tmp starts empty.
   *
   * @example
   * const ready = await sandbox.checkpoint("deps-installed");
   * await sandbox.exec.run("rm -rf node_modules");
   * await sandbox.restore(ready.id);
   */
  async restore(checkpointId: string): Promise<SandboxInfo> {
    this.info = await restoreCheckpoint(this.client, this.id, checkpointId);
    return this.info;
  }
}

/**
 * The objects of Cove's REST API as the SDK hands them out: camelCase, one interface per wire model of
 * `src/cove/wire/*.py` (or `docs/agent-api.md` for agent sessions), each with its one converter from the
 * wire JSON. Agent events are the exception: they keep their wire names (see `events.ts`).
 */

import type { FileChange } from "./events.js";

/** Resource limits of a sandbox; unset ones are not limited. */
/** `"egress"`: outbound internet, never the host, link-local, private ranges or other sandboxes unless `allow`
 * names them; `"none"`: loopback only; `"host"`: the host's network, when the server allows it. */
export type NetworkMode = "none" | "egress" | "host";

/** What a sandbox may reach: a mode and, for `egress`, allow and deny rules (CIDRs or host names). */
export interface NetworkPolicy {
  mode: NetworkMode;
  allow: string[];
  deny: string[];
}

export interface Limits {
  /** Memory limit in MiB. */
  memoryMb?: number | null;
  /** CPU quota in cores. */
  cpus?: number | null;
  /** Maximum number of processes and threads. */
  pids?: number | null;
  /** Disk quota for the sandbox's writable files, in MiB. */
  diskMb?: number | null;
  /** Size of /dev/shm (a tmpfs), in MiB. */
  shmMb?: number | null;
}

/** What a scoped token may do: `read` (info, events, attach, files), `prompt` (prompt, interrupt, configure;
 * and, for a sandbox's token, start sessions), `approve` (answer permission requests), `exec`, `files` (write),
 * `preview` (published ports). */
export type TokenScope = "read" | "prompt" | "approve" | "exec" | "files" | "preview";

/** A scoped token as the server reports it (`TokenInfo`); `token` only in the reply that minted it. */
export interface TokenInfo {
  id: string;
  sandboxId: string;
  /** The one agent session it is for, or `null`: the whole sandbox. */
  sessionId: string | null;
  scopes: TokenScope[];
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  /** The key that minted it. */
  keyId: string;
  tenantId: string;
  /** The token itself: shown once, when it is minted. Send it as a key (`apiKey`), or as `?token=`. */
  token?: string;
}

/** A sandbox's lifecycle state. */
export type SandboxState = "starting" | "running" | "stopped" | "failed";

/** Everything the server knows about a sandbox (`SandboxInfo`). */
export interface SandboxInfo {
  id: string;
  state: SandboxState;
  stopReason: string | null;
  /** Seconds since the epoch, like every time the REST API gives. */
  createdAt: number;
  expiresAt: number | null;
  idleTimeout: number | null;
  lastActiveAt: number;
  labels: Record<string, string>;
  env: Record<string, string>;
  cwd: string;
  /** The network in force: its mode and rules. */
  network: NetworkPolicy;
  limits: Limits;
  /** Each limit really enforced, and by what mechanism. */
  enforcedLimits: Record<string, string>;
  driver: string;
  /** What holds its files and checkpoints: `"overlayfs"` (or `"btrfs"`). */
  storageDriver: string;
  oomKills: number;
  /** The sandbox's own files as the disk-quota watchdog last measured them (with a quota). */
  diskUsedBytes: number | null;
  /** The tenant that owns it: the id of the key that created it. */
  tenantId: string | null;
  /** The checkpoint this sandbox was forked from, when the server reports it. */
  fromCheckpoint?: string | null;
}

/** A command run to completion (`ExecResult`). */
export interface ExecResult {
  processId: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Seconds. */
  duration: number;
  timedOut: boolean;
  signal: number | null;
  oomKilled: boolean;
  truncated: boolean;
}

/** A process in a sandbox (`ProcessInfo`). */
export interface ProcessInfo {
  /** Cove's id of the process (`p1`, `p2`...): what `exec.attach`, `get` and `kill` take. */
  processId: string;
  /** The same id, under its first name (kept for existing code; see docs/names.md). */
  id: string;
  /** The Linux process id inside the sandbox. */
  pid: number;
  command: string[];
  cwd: string;
  tag: string | null;
  running: boolean;
  exitCode: number | null;
  signal: number | null;
  timedOut: boolean;
  startedAt: number;
  endedAt: number | null;
  stdoutBytes: number;
  stderrBytes: number;
}

/** A page of a turn's unified diff (`TurnDiff`), or the whole diff from `session.diff()`. */
export interface TurnDiff {
  turn: number;
  /** The files this page shows (all of them, from `session.diff()`), as `files_changed` lists them. */
  files: FileChange[];
  /** The unified diff, as `git diff` writes it (binary and large files named, not shown). */
  diff: string;
  /** Where the next page starts; `null` on the last page. */
  nextCursor: string | null;
  /** How many files the turn changed. */
  totalFiles: number;
}

/** A terminal in a sandbox (`PtyInfo`). */
export interface PtyInfo {
  /** Cove's id of the terminal (`pty1`, `pty2`...): what `pty.attach`, `get`, `resize` and `kill` take. */
  ptyId: string;
  /** The Linux process id of its program inside the sandbox. */
  pid: number;
  command: string[];
  cols: number;
  rows: number;
  running: boolean;
  exitCode: number | null;
  signal: number | null;
  startedAt: number;
  endedAt: number | null;
  /** Bytes of output so far: the offset a client that saw all of it resumes from. */
  outputBytes: number;
}

/** A file, directory or link in a sandbox (`FileInfo`). */
export interface FileInfo {
  name: string;
  path: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number;
  modifiedAt: number;
  symlinkTarget: string | null;
}

/** Lifecycle of an agent session: `starting → idle ⇄ running → exited` (`failed`: it could not start). */
export type AgentStatus = "starting" | "idle" | "running" | "exited" | "failed";

/** Claude Code permission modes. */
export type PermissionMode = "default" | "acceptEdits" | "plan" | "bypassPermissions" | "dontAsk" | "auto";

/** An MCP server for the agent, as Claude Code takes it (`{command, args?, env?}` or `{type, url, ...}`). */
export type McpServerConfig = Record<string, unknown>;

/** The agent configuration a session runs with. */
export interface AgentConfig {
  model: string | null;
  systemPrompt: string | null;
  allowedTools: string[] | null;
  disallowedTools: string[] | null;
  permissionMode: PermissionMode;
  maxTurns: number | null;
  cwd: string;
  mcpServers: Record<string, McpServerConfig> | null;
  /** How long a permission request waits before it is denied; null: until it is answered. */
  permissionTimeoutS: number | null;
}

/** Token counts summed over a session's turns. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}

/** An agent session as the server reports it (`AgentSession` of `docs/agent-api.md`). */
export interface AgentSessionInfo {
  /** The Cove session id (`ses_…`). */
  sessionId: string;
  /** @deprecated The same id, under its first spelling; use `sessionId` (docs/names.md). */
  sessionID: string;
  sandboxId: string;
  status: AgentStatus;
  /** Whether a turn is running now (status `running`), as the server reports it. */
  running: boolean;
  /** The Claude conversation: pass it as `resume` to continue it in a new session. */
  claudeSessionId: string | null;
  turns: number;
  queued: number;
  /** Token counts Claude Code reported, summed over the turns. */
  usage: Usage;
  /** Token counts the server's model proxy counted, when it reports them. */
  meteredUsage: Usage | null;
  totalCostUsd: number;
  config: AgentConfig;
  resume: string | null;
  fork: boolean;
  exitCode: number | null;
  /** Why the session failed or ended abnormally. */
  error: { code: string; message: string } | null;
  lastSeq: number;
  createdAt: number;
  updatedAt: number;
  /** The tenant that owns it (its sandbox's): the id of a key. */
  tenantId: string | null;
}

/** A saved copy of a sandbox's files, to create new sandboxes from. */
export interface Checkpoint {
  id: string;
  sandboxId: string;
  name: string | null;
  createdAt: number;
  sizeBytes: number;
  /** The tenant that owns it (its sandbox's): the id of a key. */
  tenantId: string | null;
}

/** A published port of a sandbox (`PortInfo`): where its app answers through Cove, and who may open it. */
export interface PortInfo {
  /** The port inside the sandbox. */
  port: number;
  /** The preview URL. */
  url: string;
  /**
   * A scoped token (scope `preview`, this sandbox) that opens its private previews (header
   * `X-Cove-Preview-Token`, or `?token=` once); nothing else of the API. Closing the port revokes it.
   */
  token: string;
  /** When the token expires, Unix seconds. */
  expiresAt: number;
  public: boolean;
}

/** Which model upstream the server's agents talk to (`GET /v1/model`). */
export interface ModelInfo {
  /** `"simulator"`: Cove's model simulator (tokens and costs are simulated); else a real provider. */
  upstream: "simulator" | "anthropic-compatible";
  baseUrl: string;
  simulatorUrl: string | null;
}

/** What `exec.run` and `exec.start` take besides the command. */
export interface CommandOptions {
  /** Extra environment variables for this command. */
  env?: Record<string, string>;
  /** Working directory; default the sandbox's. */
  cwd?: string;
  /** Seconds before the command is killed. */
  timeout?: number;
}

// ---- converters: the one place that knows the wire names ----

/** Wire JSON, read field by field by the converters below. */
type Wire = Record<string, any>;

/** Limits in their wire form. */
export function limitsToWire(limits: Limits = {}): Wire {
  return {
    memory_mb: limits.memoryMb ?? null,
    cpus: limits.cpus ?? null,
    pids: limits.pids ?? null,
    disk_mb: limits.diskMb ?? null,
    shm_mb: limits.shmMb ?? null,
  };
}

/** @internal */
export function networkPolicyFrom(w: unknown): NetworkPolicy {
  const policy = (w ?? {}) as Wire;
  return { mode: policy.mode ?? "none", allow: policy.allow ?? [], deny: policy.deny ?? [] };
}

/** @internal */
export function sandboxInfoFrom(w: Wire): SandboxInfo {
  const info: SandboxInfo = {
    id: w.id,
    state: w.state,
    stopReason: w.stop_reason ?? null,
    createdAt: w.created_at,
    expiresAt: w.expires_at ?? null,
    idleTimeout: w.idle_timeout ?? null,
    lastActiveAt: w.last_active_at,
    labels: w.labels ?? {},
    env: w.env ?? {},
    cwd: w.cwd,
    network: networkPolicyFrom(w.network),
    limits: {
      memoryMb: w.limits?.memory_mb ?? null,
      cpus: w.limits?.cpus ?? null,
      pids: w.limits?.pids ?? null,
      diskMb: w.limits?.disk_mb ?? null,
      shmMb: w.limits?.shm_mb ?? null,
    },
    enforcedLimits: w.enforced_limits ?? {},
    driver: w.driver,
    storageDriver: w.storage_driver,
    oomKills: w.oom_kills ?? 0,
    diskUsedBytes: w.disk_used_bytes ?? null,
    tenantId: w.tenant_id ?? null,
  };
  if ("from_checkpoint" in w) info.fromCheckpoint = w.from_checkpoint ?? null;
  return info;
}

/** @internal */
export function execResultFrom(w: Wire): ExecResult {
  return {
    processId: w.process_id,
    exitCode: w.exit_code,
    stdout: w.stdout,
    stderr: w.stderr,
    duration: w.duration,
    timedOut: w.timed_out,
    signal: w.signal ?? null,
    oomKilled: w.oom_killed ?? false,
    truncated: w.truncated ?? false,
  };
}

/** @internal */
export function processInfoFrom(w: Wire): ProcessInfo {
  return {
    processId: w.process_id ?? w.id,
    id: w.id ?? w.process_id,
    pid: w.pid,
    command: w.command,
    cwd: w.cwd,
    tag: w.tag ?? null,
    running: w.running,
    exitCode: w.exit_code ?? null,
    signal: w.signal ?? null,
    timedOut: w.timed_out,
    startedAt: w.started_at,
    endedAt: w.ended_at ?? null,
    stdoutBytes: w.stdout_bytes,
    stderrBytes: w.stderr_bytes,
  };
}

/** @internal */
export function turnDiffFrom(w: Wire): TurnDiff {
  return {
    turn: w.turn,
    files: (w.files as Wire[]).map((f) => {
      const change: FileChange = { path: f.path, change: f.change, additions: f.additions, deletions: f.deletions };
      if (f.old_path != null) change.old_path = f.old_path;
      if (f.skipped != null) change.skipped = f.skipped;
      return change;
    }),
    diff: w.diff,
    nextCursor: w.next_cursor ?? null,
    totalFiles: w.total_files,
  };
}

/** @internal */
export function ptyInfoFrom(w: Wire): PtyInfo {
  return {
    ptyId: w.pty_id,
    pid: w.pid,
    command: w.command,
    cols: w.cols,
    rows: w.rows,
    running: w.running,
    exitCode: w.exit_code ?? null,
    signal: w.signal ?? null,
    startedAt: w.started_at,
    endedAt: w.ended_at ?? null,
    outputBytes: w.output_bytes,
  };
}

/** @internal */
export function fileInfoFrom(w: Wire): FileInfo {
  return {
    name: w.name,
    path: w.path,
    type: w.type,
    size: w.size,
    mode: w.mode,
    modifiedAt: w.modified_at,
    symlinkTarget: w.symlink_target ?? null,
  };
}

/** @internal */
export function agentConfigFrom(w: Wire): AgentConfig {
  return {
    model: w.model ?? null,
    systemPrompt: w.system_prompt ?? null,
    allowedTools: w.allowed_tools ?? null,
    disallowedTools: w.disallowed_tools ?? null,
    permissionMode: w.permission_mode,
    maxTurns: w.max_turns ?? null,
    cwd: w.cwd,
    mcpServers: w.mcp_servers ?? null,
    permissionTimeoutS: w.permission_timeout_s ?? null,
  };
}

function usageFrom(w: Wire): Usage {
  return {
    inputTokens: w.input_tokens ?? 0,
    outputTokens: w.output_tokens ?? 0,
    cacheCreationInputTokens: w.cache_creation_input_tokens ?? 0,
    cacheReadInputTokens: w.cache_read_input_tokens ?? 0,
  };
}

/** @internal */
export function agentSessionInfoFrom(w: Wire): AgentSessionInfo {
  return {
    sessionId: w.session_id,
    sessionID: w.session_id,
    sandboxId: w.sandbox_id,
    status: w.status,
    running: w.running ?? w.status === "running",
    claudeSessionId: w.claude_session_id ?? null,
    turns: w.turns ?? 0,
    queued: w.queued ?? 0,
    usage: usageFrom(w.usage ?? {}),
    meteredUsage: w.metered_usage ? usageFrom(w.metered_usage) : null,
    totalCostUsd: w.total_cost_usd ?? 0,
    config: agentConfigFrom(w.config ?? {}),
    resume: w.resume ?? null,
    fork: w.fork ?? false,
    exitCode: w.exit_code ?? null,
    error: typeof w.error === "string" ? { code: "error", message: w.error } : (w.error ?? null),
    lastSeq: w.last_seq ?? 0,
    createdAt: w.created_at,
    updatedAt: w.updated_at,
    tenantId: w.tenant_id ?? null,
  };
}

/** @internal */
export function checkpointFrom(w: Wire): Checkpoint {
  return {
    id: w.id,
    sandboxId: w.sandbox_id,
    name: w.name ?? null,
    createdAt: w.created_at,
    sizeBytes: w.size_bytes,
    tenantId: w.tenant_id ?? null,
  };
}

/** @internal */
export function tokenInfoFrom(w: Wire): TokenInfo {
  return {
    id: w.id,
    sandboxId: w.sandbox_id,
    sessionId: w.session_id ?? null,
    scopes: w.scopes ?? [],
    createdAt: w.created_at,
    expiresAt: w.expires_at,
    revokedAt: w.revoked_at ?? null,
    keyId: w.key_id,
    tenantId: w.tenant_id,
  };
}

/** @internal */
export function portInfoFrom(w: Wire): PortInfo {
  return { port: w.port, url: w.url, token: w.token, expiresAt: w.expires_at, public: w.public };
}

/** @internal */
export function modelInfoFrom(w: Wire): ModelInfo {
  return { upstream: w.upstream, baseUrl: w.base_url, simulatorUrl: w.simulator_url ?? null };
}

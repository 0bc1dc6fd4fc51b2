/**
 * `@cove/sdk` — Cove's TypeScript SDK: sandboxes, exec, files, checkpoints and durable Claude Code agent
 * sessions. This module is the public surface; everything else is internal.
 *
 * @example
 * import { Sandbox } from "@cove/sdk";
 * const sandbox = await Sandbox.create();
 * const session = await sandbox.agent.start({ prompt: "Write hello.py", onEvent: (e) => console.log(e.type) });
 * await session.done;
 */

export { Agent, AgentSession } from "./agent.js";
export type {
  AgentAttachOptions,
  AgentCallbacks,
  AgentConfigureOptions,
  AgentStartOptions,
  InterruptReceipt,
  PermissionAnswer,
  PermissionDecision,
  PermissionReceipt,
  PermissionRequest,
  PromptReceipt,
} from "./agent.js";
export { DEFAULT_URL, resolveKey, resolveUrl } from "./config.js";
export {
  AgentError,
  AgentUnavailable,
  AlreadyExists,
  AlreadyResolved,
  AuthError,
  BY_CODE,
  BY_STATUS,
  CheckpointNotFound,
  CommandNotFound,
  CommandTimeout,
  Conflict,
  ConnectionLost,
  CoveError,
  DirectoryNotEmpty,
  DiskQuotaExceeded,
  FileNotFound,
  Forbidden,
  InvalidRequest,
  IsADirectory,
  NetworkModeForbidden,
  NotADirectory,
  NotFound,
  PathOutsideSandbox,
  PayloadTooLarge,
  PermissionDenied,
  PermissionNotFound,
  PortNotFound,
  ProcessNotFound,
  PtyNotFound,
  QuotaExceeded,
  RateLimited,
  ResumeNotFound,
  SandboxNotFound,
  SandboxNotRunning,
  SandboxStartFailed,
  SandboxUnavailable,
  ServerError,
  SessionExited,
  SessionNotFound,
  StdinClosed,
  TurnNotFound,
  errorFrom,
} from "./errors.js";
export * from "./events.js";
export { Exec, ProcessHandle } from "./exec.js";
export type { OutputChunk, ProcessResult, RunOptions, StartOptions, StreamCallbacks } from "./exec.js";
export { Files } from "./files.js";
export { Network } from "./network.js";
export { Pty, PtyHandle } from "./pty.js";
export type { PtyAttachOptions, PtyCreateOptions } from "./pty.js";
export type { NetworkRules } from "./network.js";
export type { FileData, ProgressCallback } from "./files.js";
export { Ports } from "./ports.js";
export type { ExposeOptions } from "./ports.js";
export { Sandbox } from "./sandbox.js";
export type { TokenOptions } from "./tokens.js";
export type { SandboxCreateOptions, SandboxListOptions } from "./sandbox.js";
export { CoveClient } from "./transport.js";
export type { ConnectionOptions } from "./transport.js";
export type {
  AgentConfig,
  AgentSessionInfo,
  AgentStatus,
  Checkpoint,
  CommandOptions,
  ExecResult,
  FileInfo,
  Limits,
  McpServerConfig,
  ModelInfo,
  NetworkMode,
  NetworkPolicy,
  PermissionMode,
  PortInfo,
  ProcessInfo,
  PtyInfo,
  TurnDiff,
  SandboxInfo,
  SandboxState,
  TokenInfo,
  TokenScope,
  Usage,
} from "./types.js";

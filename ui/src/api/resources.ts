/**
 * Cove's REST resources as the page uses them, each call one route of the API. Replies are converted by the
 * TypeScript SDK's own converters (`@cove/sdk/types`), so the page and the SDK share one camelCase shape and one
 * name for everything (docs/names.md).
 */

import {
  type AgentSessionInfo,
  type Checkpoint,
  type FileInfo,
  type ProcessInfo,
  type SandboxInfo,
  agentSessionInfoFrom,
  checkpointFrom,
  fileInfoFrom,
  processInfoFrom,
  sandboxInfoFrom,
} from "@cove/sdk/types.js";

import type { Api } from "./client.js";

type Wire = Record<string, unknown>;

const id = encodeURIComponent;
export const sandboxPath = (sandboxId: string): string => `/v1/sandboxes/${id(sandboxId)}`;

// ---- sandboxes ----

export interface SandboxFilter {
  state: string;
  labels: string[];
  /** The admin's: one tenant's sandboxes. */
  tenant: string;
}

export async function listSandboxes(api: Api, filter: SandboxFilter, signal?: AbortSignal): Promise<SandboxInfo[]> {
  const search = new URLSearchParams();
  if (filter.state) search.set("state", filter.state);
  for (const label of filter.labels) search.append("label", label);
  if (filter.tenant) search.set("tenant_id", filter.tenant);
  const query = search.toString();
  const reply = await api.request<{ sandboxes: Wire[] }>("GET", `/v1/sandboxes${query ? `?${query}` : ""}`, { signal });
  return reply.sandboxes.map(sandboxInfoFrom);
}

export async function getSandbox(api: Api, sandboxId: string, signal?: AbortSignal): Promise<SandboxInfo> {
  return sandboxInfoFrom(await api.request<Wire>("GET", sandboxPath(sandboxId), { signal }));
}

export interface SandboxSpec {
  labels: Record<string, string>;
  limits: { memory_mb?: number; cpus?: number; pids?: number; disk_mb?: number };
  network?: string;
  from_checkpoint?: string;
}

export async function createSandbox(api: Api, spec: SandboxSpec): Promise<SandboxInfo> {
  return sandboxInfoFrom(await api.post<Wire>("/v1/sandboxes", spec));
}

export async function killSandbox(api: Api, sandboxId: string): Promise<SandboxInfo> {
  return sandboxInfoFrom(await api.request<Wire>("DELETE", sandboxPath(sandboxId)));
}

// ---- agent sessions ----

export async function listSessions(api: Api, sandboxId: string, signal?: AbortSignal): Promise<AgentSessionInfo[]> {
  const reply = await api.request<{ sessions: Wire[] }>("GET", `${sandboxPath(sandboxId)}/agent`, { signal });
  return reply.sessions.map(agentSessionInfoFrom);
}

export async function startSession(
  api: Api,
  sandboxId: string,
  options: { prompt?: string; model?: string; permission_mode: string },
): Promise<AgentSessionInfo> {
  return agentSessionInfoFrom(await api.post<Wire>(`${sandboxPath(sandboxId)}/agent`, options));
}

// ---- processes ----

export async function listProcesses(api: Api, sandboxId: string, signal?: AbortSignal): Promise<ProcessInfo[]> {
  const reply = await api.request<{ processes: Wire[] }>("GET", `${sandboxPath(sandboxId)}/processes`, { signal });
  return reply.processes.map(processInfoFrom);
}

export async function startProcess(api: Api, sandboxId: string, command: string): Promise<ProcessInfo> {
  return processInfoFrom(await api.post<Wire>(`${sandboxPath(sandboxId)}/exec`, { command, background: true }));
}

export async function killProcess(api: Api, sandboxId: string, processId: string): Promise<void> {
  await api.request("DELETE", `${sandboxPath(sandboxId)}/processes/${id(processId)}`);
}

// ---- files ----

export async function listFiles(api: Api, sandboxId: string, path: string): Promise<FileInfo[]> {
  const entries: FileInfo[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await api.get<{ entries: Wire[]; has_more: boolean }>(`${sandboxPath(sandboxId)}/files/list`, { path, after });
    entries.push(...page.entries.map(fileInfoFrom));
    if (!page.has_more || !page.entries.length) return entries;
    after = entries[entries.length - 1]!.name;
  }
}

/** A file's bytes, read with the credential in a header (so no URL carries it). */
export async function readFile(api: Api, sandboxId: string, path: string): Promise<Blob> {
  return (await api.fetch("GET", `${sandboxPath(sandboxId)}/files`, { query: { path } })).blob();
}

export async function uploadFile(api: Api, sandboxId: string, path: string, file: Blob): Promise<FileInfo> {
  const response = await api.fetch("PUT", `${sandboxPath(sandboxId)}/files`, { query: { path }, body: file });
  return fileInfoFrom((await response.json()) as Wire);
}

// ---- checkpoints ----

export async function listCheckpoints(api: Api, sandboxId: string, signal?: AbortSignal): Promise<Checkpoint[]> {
  const reply = await api.request<{ checkpoints: Wire[] }>("GET", `${sandboxPath(sandboxId)}/checkpoints`, { signal });
  return reply.checkpoints.map(checkpointFrom);
}

export async function createCheckpoint(api: Api, sandboxId: string, name: string | null): Promise<Checkpoint> {
  return checkpointFrom(await api.post<Wire>(`${sandboxPath(sandboxId)}/checkpoints`, name ? { name } : {}));
}

export async function restoreCheckpoint(api: Api, sandboxId: string, checkpointId: string): Promise<void> {
  await api.post(`${sandboxPath(sandboxId)}/restore`, { checkpoint_id: checkpointId });
}

export async function deleteCheckpoint(api: Api, checkpointId: string): Promise<void> {
  await api.request("DELETE", `/v1/checkpoints/${id(checkpointId)}`);
}

// ---- what a turn changed ----

/** Past this many bytes of patch, a turn's diff is shown up to there (the rest: `cove agent diff`). */
const DIFF_BYTES = 4 << 20;

export interface TurnDiff {
  /** The patch, as `git diff` writes it: its pages joined. */
  diff: string;
  totalFiles: number;
  /** The patch was longer than the page shows. */
  cut: boolean;
}

/** Turn `turn`'s unified diff, page after page (`GET …/turns/{n}/diff`, `next_cursor`). */
export async function getTurnDiff(api: Api, sandboxId: string, sessionId: string, turn: number, signal?: AbortSignal): Promise<TurnDiff> {
  const path = `${sandboxPath(sandboxId)}/agent/${id(sessionId)}/turns/${turn}/diff`;
  const pages: string[] = [];
  let length = 0;
  let cursor: string | null = null;
  let totalFiles = 0;
  do {
    const query = cursor ? { cursor } : undefined;
    const page: { diff: string; next_cursor: string | null; total_files: number } = await api.request("GET", path, { query, signal });
    pages.push(page.diff);
    length += page.diff.length;
    totalFiles = page.total_files;
    cursor = page.next_cursor;
  } while (cursor && length < DIFF_BYTES);
  return { diff: pages.join(""), totalFiles, cut: cursor !== null };
}

// ---- published ports ----

/** A published port (`PortInfo`): its preview URL, and the token that opens it while it is private. */
export interface PublishedPort {
  port: number;
  url: string;
  token: string;
  public: boolean;
}

/** The preview's address for a browser: a private one carries its token once (then a cookie keeps it open). */
export function previewLink(port: PublishedPort): string {
  return port.public ? port.url : `${port.url}?token=${encodeURIComponent(port.token)}`;
}

export async function listPorts(api: Api, sandboxId: string, signal?: AbortSignal): Promise<PublishedPort[]> {
  return (await api.request<{ ports: PublishedPort[] }>("GET", `${sandboxPath(sandboxId)}/ports`, { signal })).ports;
}

export async function publishPort(api: Api, sandboxId: string, port: number, isPublic: boolean): Promise<PublishedPort> {
  return api.post<PublishedPort>(`${sandboxPath(sandboxId)}/ports`, { port, public: isPublic });
}

export async function closePort(api: Api, sandboxId: string, port: number): Promise<void> {
  await api.request("DELETE", `${sandboxPath(sandboxId)}/ports/${port}`);
}

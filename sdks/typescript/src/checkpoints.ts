/**
 * Checkpoints: snapshots of a sandbox's files (`/workspace` and `/home/user`; not `/tmp`, not processes) to
 * fork new sandboxes from or to restore in place (`docs/checkpoints.md`). Called through `Sandbox`.
 */

import type { CoveClient } from "./transport.js";
import { type Checkpoint, type SandboxInfo, checkpointFrom, sandboxInfoFrom } from "./types.js";

/** @internal `sandbox.checkpoint(name)`. */
export async function createCheckpoint(client: CoveClient, sandboxId: string, name?: string): Promise<Checkpoint> {
  const body = name === undefined ? {} : { name };
  return checkpointFrom(await client.request("POST", `/v1/sandboxes/${sandboxId}/checkpoints`, { json: body }));
}

/** @internal `sandbox.checkpoints()`. */
export async function listCheckpoints(client: CoveClient, sandboxId: string): Promise<Checkpoint[]> {
  const reply = await client.request<{ checkpoints: Record<string, unknown>[] }>(
    "GET",
    `/v1/sandboxes/${sandboxId}/checkpoints`,
  );
  return reply.checkpoints.map(checkpointFrom);
}

/** @internal `sandbox.getCheckpoint(id)`. */
export async function getCheckpoint(client: CoveClient, checkpointId: string): Promise<Checkpoint> {
  return checkpointFrom(await client.request("GET", `/v1/checkpoints/${checkpointId}`));
}

/** @internal `sandbox.deleteCheckpoint(id)`. */
export async function deleteCheckpoint(client: CoveClient, checkpointId: string): Promise<Checkpoint> {
  return checkpointFrom(await client.request("DELETE", `/v1/checkpoints/${checkpointId}`));
}

/** @internal `sandbox.restore(id)`. */
export async function restoreCheckpoint(client: CoveClient, sandboxId: string, checkpointId: string): Promise<SandboxInfo> {
  const body = { checkpoint_id: checkpointId };
  return sandboxInfoFrom(await client.request("POST", `/v1/sandboxes/${sandboxId}/restore`, { json: body }));
}

/**
 * Checkpoints: a saved copy of a sandbox to create new sandboxes from
 * (`POST /v1/sandboxes/{id}/checkpoints`, then `POST /v1/sandboxes` with `from_checkpoint`).
 */

import type { CoveClient } from "./transport.js";
import { type Checkpoint, checkpointFrom } from "./types.js";

/**
 * Checkpoint a sandbox; `Sandbox.create({ fromCheckpoint: checkpoint.id })` starts a copy of it.
 *
 * @internal Called as `sandbox.checkpoint(name)`.
 */
export async function createCheckpoint(client: CoveClient, sandboxId: string, name?: string): Promise<Checkpoint> {
  const body = name === undefined ? {} : { name };
  return checkpointFrom(await client.request("POST", `/v1/sandboxes/${sandboxId}/checkpoints`, { json: body }));
}

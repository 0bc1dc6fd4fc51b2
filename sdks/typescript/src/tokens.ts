/**
 * Scoped tokens: for one sandbox (or one agent session in it), some scopes, a time to live — what a browser may
 * hold without the key behind it (`docs/teams.md`). Minted through `Sandbox.createToken` and
 * `AgentSession.createToken`; any client takes one where it takes a key (`apiKey`).
 */

import type { CoveClient } from "./transport.js";
import { type TokenInfo, type TokenScope, tokenInfoFrom } from "./types.js";

/** Options of `createToken`. */
export interface TokenOptions {
  /** What the token may do; at least one. */
  scopes: TokenScope[];
  /** Seconds until it expires (default 3600; at most 30 days). */
  ttlS?: number;
}

/** @internal `sandbox.createToken(...)`, `session.createToken(...)`. */
export async function mintToken(
  client: CoveClient,
  sandboxId: string,
  sessionId: string | null,
  options: TokenOptions,
): Promise<TokenInfo & { token: string }> {
  const body = { sandbox_id: sandboxId, session_id: sessionId, scopes: options.scopes, ttl_s: options.ttlS ?? 3600 };
  const reply = await client.request<Record<string, unknown>>("POST", "/v1/tokens", { json: body });
  return { ...tokenInfoFrom(reply), token: String(reply.token) };
}

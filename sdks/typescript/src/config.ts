/**
 * Where the SDK finds its server and key: options, then `COVE_URL` / `COVE_API_KEY`, then local defaults —
 * the same order as the Python SDK (`cove.sdk._config`).
 */

import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The server a client talks to when neither an option nor `COVE_URL` names one. */
export const DEFAULT_URL = "http://127.0.0.1:7420";

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The server URL: the option, else `COVE_URL`, else {@link DEFAULT_URL}; without a trailing slash. */
export function resolveUrl(url?: string): string {
  return (url || process.env.COVE_URL || DEFAULT_URL).replace(/\/+$/, "");
}

/**
 * The API key: the option, else `COVE_API_KEY`; for a server on this machine, else the admin key the server
 * stored on its first start in `$COVE_HOME/admin_key` (default `~/.cove/admin_key`).
 */
export function resolveKey(url: string, apiKey?: string): string | undefined {
  const key = apiKey || process.env.COVE_API_KEY;
  if (key) return key;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  if (!LOCAL_HOSTS.has(host)) return undefined;
  const home = process.env.COVE_HOME || join(homedir(), ".cove");
  try {
    return readFileSync(join(home, "admin_key"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

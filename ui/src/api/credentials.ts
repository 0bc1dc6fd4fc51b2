/**
 * Who the page acts as: an API key the user typed, or a scoped token that a shared link carried. Either is kept
 * in this tab's session storage (gone when the tab closes) and sent in a header or a WebSocket subprotocol —
 * never in a URL the page makes. A shared link's `?token=` is taken out of the address bar as soon as it is read,
 * so it does not stay in the history or travel on in a copied link. What the credential may do comes from the
 * server (`GET /v1/whoami`), and the page offers only that.
 */

import type { Route } from "../lib/router.js";
import { Api } from "./client.js";

/** What a scoped token may do (docs/teams.md); an API key may do all of it. */
export type Scope = "read" | "prompt" | "approve" | "exec" | "files" | "preview";

export const ALL_SCOPES: readonly Scope[] = ["read", "prompt", "approve", "exec", "files", "preview"];

export interface Credentials {
  kind: "key" | "token";
  secret: string;
  /** What the page offers: every scope for a key, the token's own for a token. */
  scopes: Scope[];
  /** The admin key: sees every tenant's sandboxes. */
  admin: boolean;
  /** A token's sandbox, and its session when it is for one: the page opens there and goes nowhere else. */
  sandboxId: string | null;
  sessionId: string | null;
}

/** `GET /v1/whoami`'s reply. */
export interface Whoami {
  kind: "key" | "token";
  admin: boolean;
  scopes: Scope[] | null;
  sandbox_id: string | null;
  session_id: string | null;
}

const STORAGE_KEY = "cove.credentials";

export function credentialsOf(secret: string, whoami: Whoami): Credentials {
  return {
    kind: whoami.kind,
    secret,
    scopes: (whoami.scopes ?? ALL_SCOPES).filter((scope) => ALL_SCOPES.includes(scope)),
    admin: whoami.admin,
    sandboxId: whoami.sandbox_id,
    sessionId: whoami.session_id,
  };
}

/** Ask the server what `secret` is and may do; rejects with its typed error (AuthError for a refused one). */
export async function identify(secret: string): Promise<Credentials> {
  const probe = new Api(credentialsOf(secret, { kind: "token", admin: false, scopes: [], sandbox_id: null, session_id: null }));
  return credentialsOf(secret, await probe.get<Whoami>("/v1/whoami"));
}

function isCredentials(value: unknown): value is Credentials {
  const c = value as Credentials | null;
  return (
    !!c &&
    (c.kind === "key" || c.kind === "token") &&
    typeof c.secret === "string" &&
    typeof c.admin === "boolean" &&
    Array.isArray(c.scopes) &&
    c.scopes.every((s) => ALL_SCOPES.includes(s))
  );
}

export function loadCredentials(): Credentials | null {
  try {
    const value: unknown = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
    return isCredentials(value) ? value : null;
  } catch {
    return null;
  }
}

export function saveCredentials(credentials: Credentials): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
}

export function forgetCredentials(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** The `?token=` of a shared link, removed from the address bar (and so from the history entry). */
export function takeLinkToken(): string | null {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return null;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  return token || null;
}

export function can(credentials: Credentials, scope: Scope): boolean {
  return credentials.scopes.includes(scope);
}

/** Where the credential's page starts: every sandbox for a key, its sandbox or session for a token. */
export function home(credentials: Credentials): Route {
  const { sandboxId, sessionId } = credentials;
  if (sandboxId && sessionId) return { view: "session", sandboxId, sessionId };
  if (sandboxId) return { view: "sandbox", sandboxId, tab: "sessions" };
  return { view: "sandboxes" };
}

/** Whether the credential may see a view at all (a token sees its own sandbox or session only). */
export function reaches(credentials: Credentials, route: Route): boolean {
  if (credentials.kind === "key" || route.view === "missing") return true;
  if (route.view === "sandboxes") return false;
  if (route.sandboxId !== credentials.sandboxId) return false;
  return !credentials.sessionId || (route.view === "session" && route.sessionId === credentials.sessionId);
}

/**
 * Who the page acts as: an API key the user typed, or a scoped token that a shared link carried. Either is kept
 * in this tab's session storage (gone when the tab closes) and sent in a header or a WebSocket subprotocol —
 * never in a URL the page makes. A shared link's `?token=` is taken out of the address bar as soon as it is read,
 * so it does not stay in the history or travel on in a copied link.
 */

/** What a scoped token may do (docs/names.md); an API key may do all of it. */
export type Scope = "read" | "prompt" | "approve" | "exec" | "files" | "preview";

export const ALL_SCOPES: readonly Scope[] = ["read", "prompt", "approve", "exec", "files", "preview"];

export interface Credentials {
  kind: "key" | "token";
  secret: string;
  /** What the page offers: every scope for a key, the token's own for a token. */
  scopes: Scope[];
  /** A token's sandbox and session, when it is bound to them: the page opens there and goes nowhere else. */
  sandboxId?: string | null;
  sessionId?: string | null;
}

const STORAGE_KEY = "cove.credentials";

function isCredentials(value: unknown): value is Credentials {
  const c = value as Credentials | null;
  return (
    !!c &&
    (c.kind === "key" || c.kind === "token") &&
    typeof c.secret === "string" &&
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

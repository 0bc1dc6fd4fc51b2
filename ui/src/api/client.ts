/**
 * The page's client of Cove's API, on this origin: `fetch` with the credential in the Authorization header, and
 * WebSockets carrying it as a subprotocol (`cove.bearer.<credential>` beside `cove`; see cove/api/auth.py), since a
 * browser cannot set a WebSocket's headers and a URL is no place for a secret. Failures arrive typed, by the
 * same table as the SDKs (`errorFrom`, docs/names.md).
 */

import { ConnectionLost, CoveError, errorFrom } from "@cove/sdk/errors.js";

import type { Credentials } from "./credentials.js";

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  json?: unknown;
  body?: BodyInit;
  signal?: AbortSignal;
}

function queryString(query?: Query): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) search.append(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function errorOf(response: Response): Promise<CoveError> {
  let code = "http_error";
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    // not one of Cove's error bodies: the status says enough
  }
  return errorFrom(response.status, code, message);
}

export class Api {
  /** Called when the server refuses the credential (401): the page signs out and says why. */
  onUnauthorized: (error: CoveError) => void = () => undefined;

  constructor(readonly credentials: Credentials) {}

  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.credentials.secret}` };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let response: Response;
    try {
      response = await fetch(path + queryString(options.query), { method, headers, body, signal: options.signal ?? null });
    } catch (cause) {
      if (options.signal?.aborted) throw cause;
      throw new ConnectionLost("cannot reach the Cove server", { cause });
    }
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return response;
  }

  /** A JSON request; the parsed reply, or `undefined` for an empty one. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.fetch(method, path, options);
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  post<T>(path: string, json: unknown = {}): Promise<T> {
    return this.request<T>("POST", path, { json });
  }

  /** A WebSocket to this origin, authenticated by subprotocol. */
  socket(path: string, query?: Query): WebSocket {
    const origin = location.origin.replace(/^http/, "ws");
    return new WebSocket(origin + path + queryString(query), ["cove", `cove.bearer.${this.credentials.secret}`]);
  }
}

/** Every JSON object of a frame: Cove's streams send one per frame, or several, one per line (`?batch=N`). */
export function framesOf(data: unknown): Record<string, unknown>[] {
  if (typeof data !== "string") return [];
  const frames: Record<string, unknown>[] = [];
  for (const line of data.split("\n")) {
    try {
      const frame: unknown = JSON.parse(line);
      if (frame && typeof frame === "object" && !Array.isArray(frame)) frames.push(frame as Record<string, unknown>);
    } catch {
      // not JSON: nothing Cove sends
    }
  }
  return frames;
}

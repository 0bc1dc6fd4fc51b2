/**
 * The transport every SDK object shares: HTTP through the platform's `fetch`, WebSockets through `ws`.
 * Errors leave here typed (see `errors.ts`); nothing above this module touches status codes.
 */

import WebSocket from "ws";

import { resolveKey, resolveUrl } from "./config.js";
import { ConnectionLost, CoveError, errorFrom } from "./errors.js";

/** How to reach a Cove server. Every field is optional: see `resolveUrl` and `resolveKey`. */
export interface ConnectionOptions {
  /** The server, e.g. `http://127.0.0.1:7420`; default `COVE_URL`, then the local default. */
  url?: string;
  /** The API key; default `COVE_API_KEY`, then (for a local server) `$COVE_HOME/admin_key`. */
  apiKey?: string;
  /** Share one client between many sandboxes instead of making one from `url` and `apiKey`. */
  client?: CoveClient;
}

/** Query parameters; `undefined` values are left out, arrays repeat the key. */
export type Query = Record<string, string | number | boolean | undefined | string[]>;

/** The body of a request: JSON, or raw bytes/text/chunks sent as they are. */
export interface RequestBody {
  json?: unknown;
  raw?: string | Uint8Array | AsyncIterable<Uint8Array>;
}

function queryString(params?: Query): string {
  if (!params) return "";
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function streamOf(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

async function raiseFor(response: Response): Promise<void> {
  if (response.ok) return;
  let code = "http_error";
  let message = response.statusText;
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string") message = body.error.message;
  } catch {
    if (text) message = text;
  }
  throw errorFrom(response.status, code, message);
}

/**
 * A frame the server sent, parsed: Cove's WebSockets speak JSON text frames, and a terminal's bytes come in
 * binary frames, which arrive here as `{ type: "bytes", data }`.
 */
export type Frame = Record<string, unknown> & { type?: unknown };

/**
 * One WebSocket, with every frame buffered from the moment it opens until a consumer takes it — so no frame
 * is lost between the handshake and the caller attaching its handler.
 */
export class Channel {
  private readonly frames: Frame[] = [];
  private waiter: ((frame: Frame | null) => void) | undefined;
  private handler: ((frame: Frame) => void) | undefined;
  private closeHandler: ((code: number, reason: string) => void) | undefined;
  private closedWith: { code: number; reason: string } | undefined;

  constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (isBinary) {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        this.deliver({ type: "bytes", data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
        return;
      }
      // A frame holds one JSON object, or several, one per line, with ?batch=N (replay pages, live batches).
      for (const line of data.toString().split("\n")) {
        let frame: Frame;
        try {
          frame = JSON.parse(line) as Frame;
        } catch {
          continue; // not one of ours; the protocol is JSON only
        }
        this.deliver(frame);
      }
    });
    socket.on("close", (code: number, reason: Buffer) => {
      this.closedWith = { code, reason: reason.toString() };
      this.wake(null);
      this.closeHandler?.(code, reason.toString());
    });
    socket.on("error", () => {
      // "close" follows every "error"; the close handler reports it.
    });
  }

  private deliver(frame: Frame): void {
    if (this.waiter) this.wake(frame);
    else if (this.handler) this.handler(frame);
    else this.frames.push(frame);
  }

  private wake(frame: Frame | null): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(frame);
  }

  /** The next frame, or `null` once the socket has closed. For handshakes; then use `onFrame`. */
  next(): Promise<Frame | null> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.closedWith) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Hand every frame — the buffered ones first — to `handler`, and the close to `onClose`. */
  listen(handler: (frame: Frame) => void, onClose: (code: number, reason: string) => void): void {
    this.handler = handler;
    this.closeHandler = onClose;
    while (this.frames.length && this.handler === handler) handler(this.frames.shift()!);
    if (this.closedWith && this.closeHandler === onClose) onClose(this.closedWith.code, this.closedWith.reason);
  }

  /** Why the socket closed, once it has. */
  get closeInfo(): { code: number; reason: string } | undefined {
    return this.closedWith;
  }

  /** Whether frames can still be sent. */
  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Send one JSON frame. */
  send(frame: unknown): void {
    if (!this.open) throw new ConnectionLost("the WebSocket is not open");
    this.socket.send(JSON.stringify(frame));
  }

  /** Send one binary frame (a terminal's input). */
  sendBytes(data: Uint8Array): void {
    if (!this.open) throw new ConnectionLost("the WebSocket is not open");
    this.socket.send(data, { binary: true });
  }

  /** Close our end; the handlers are dropped first, so closing on purpose reports nothing. */
  close(): void {
    this.handler = undefined;
    this.closeHandler = undefined;
    if (this.socket.readyState === WebSocket.CONNECTING) this.socket.terminate();
    else this.socket.close();
  }

  /** Drop the connection at once, as a network failure would (for tests of reconnecting). */
  terminate(): void {
    this.socket.terminate();
  }
}

/**
 * The typed error for a WebSocket closed by the server with an application code: Cove closes refused
 * sockets with `4000 + HTTP status` (4401 bad key, 4404 unknown id, 4409 not running).
 */
export function closeError(code: number, reason: string): CoveError | undefined {
  if (code < 4000 || code >= 5000) return undefined;
  const status = code - 4000;
  const codes: Record<number, string> = { 401: "unauthorized", 404: "not_found", 409: "conflict" };
  return errorFrom(status, codes[status] ?? "websocket_closed", reason || `WebSocket closed with ${code}`);
}

/** The error for a server that does not answer at all — usually one that is not running. */
function unreachable(url: string, cause: unknown): ConnectionLost {
  const reason = (cause as { cause?: { code?: string } })?.cause?.code ?? (cause as Error)?.message ?? String(cause);
  return new ConnectionLost(
    `cannot reach the Cove server at ${url} (${reason}); start one with \`cove serve\`, or point COVE_URL at a running one`,
    { cause },
  );
}

/** One server, one key: every sandbox made through a client shares it. */
export class CoveClient {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  /** The API key sent with every request, if any. */
  readonly apiKey: string | undefined;

  /**
   * @example
   * const client = new CoveClient({ url: "http://127.0.0.1:7420", apiKey: process.env.COVE_API_KEY });
   * const sandbox = await Sandbox.create({ client });
   */
  constructor(options: { url?: string; apiKey?: string } = {}) {
    this.url = resolveUrl(options.url);
    this.apiKey = resolveKey(this.url, options.apiKey);
  }

  /** The client named by `options.client`, or a new one for `options.url` and `options.apiKey`. */
  static from(options: ConnectionOptions = {}): CoveClient {
    return options.client ?? new CoveClient(options);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}`, ...extra } : extra;
  }

  /** Send a request; `fetch` failures become `ConnectionLost`, error replies their typed error. */
  async fetch(method: string, path: string, query?: Query, body: RequestBody = {}): Promise<Response> {
    const init: RequestInit & { duplex?: "half" } = { method, headers: this.headers() };
    if (body.json !== undefined) {
      init.body = JSON.stringify(body.json);
      init.headers = this.headers({ "content-type": "application/json" });
    } else if (typeof body.raw === "string" || body.raw instanceof Uint8Array) {
      init.body = body.raw;
      init.headers = this.headers({ "content-type": "application/octet-stream" });
    } else if (body.raw !== undefined) {
      init.body = streamOf(body.raw);
      init.duplex = "half"; // a streamed request body needs it
      init.headers = this.headers({ "content-type": "application/octet-stream" });
    }
    let response: Response;
    try {
      response = await fetch(this.url + path + queryString(query), init);
    } catch (cause) {
      throw unreachable(this.url, cause);
    }
    await raiseFor(response);
    return response;
  }

  /** A JSON request; resolves to the parsed reply (`undefined` for an empty one). */
  async request<T>(method: string, path: string, options: { query?: Query; json?: unknown } = {}): Promise<T> {
    const response = await this.fetch(method, path, options.query, { json: options.json });
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Open a WebSocket and resolve once the handshake is done. Frames are buffered from that moment on
   * (see {@link Channel}).
   */
  websocket(path: string, query?: Query): Promise<Channel> {
    const url = this.url.replace(/^http/, "ws") + path + queryString(query);
    return new Promise((resolve, reject) => {
      // No per-message deflate: the server does not compress (CPU on both ends for loopback/LAN bytes).
      const options = { headers: this.headers(), maxPayload: 64 * 1024 * 1024, perMessageDeflate: false };
      const socket = new WebSocket(url, options);
      const channel = new Channel(socket);
      socket.once("open", () => resolve(channel));
      socket.once("unexpected-response", (_request, response) => {
        // A refused handshake carries the server's JSON error, as a REST reply does (401, 404, 429…).
        const status = response.statusCode ?? 0;
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          let code = status === 401 ? "unauthorized" : "websocket_rejected";
          let message = `WebSocket refused: HTTP ${status}`;
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString()) as { error?: { code?: unknown; message?: unknown } };
            if (typeof body.error?.code === "string") code = body.error.code;
            if (typeof body.error?.message === "string") message = body.error.message;
          } catch {
            // not Cove's JSON (a proxy's page): the status says enough
          }
          reject(errorFrom(status, code, message));
          socket.terminate();
        });
      });
      socket.once("error", (cause: Error) =>
        reject(unreachable(this.url, cause)),
      );
    });
  }
}

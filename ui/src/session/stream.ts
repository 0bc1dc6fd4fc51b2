/**
 * A session's live events, for as long as the page shows it: the WebSocket replays what came after `lastSeq`
 * (`?after=`, in frames of up to 500 events), says `scrollback_end`, then carries live events. When the
 * connection drops — a network hiccup, a server restart — it opens again from the last seq it handed on, so a
 * reconnect neither loses an event nor repeats one; a gap the server's stream left (it should not) is filled
 * from the REST log before anything after it is handed on.
 *
 * Commands (prompt, interrupt, configure, permission) go as frames on the open socket and resolve with their
 * acknowledgement; with no socket open they go over REST, which answers the same way (docs/agent-api.md).
 */

import { ConnectionLost, CoveError, errorFrom } from "@cove/sdk/errors.js";
import type { AgentEvent } from "@cove/sdk/events.js";

import { type Api, framesOf } from "../api/client.js";

export type Connection = "connecting" | "replaying" | "live" | "reconnecting" | "ended" | "failed";

export interface StreamHandlers {
  /** Events in seq order, each once, in the batches they arrived in. */
  events(events: AgentEvent[]): void;
  connection(state: Connection, error?: CoveError): void;
}

type Fields = Record<string, unknown>;

const MAX_DELAY_MS = 5000;
/** A replay frame holds up to this many events: a long session arrives in a few hundred frames, not one each. */
const BATCH = 500;

/** REST twins of the WebSocket ops, for when no socket is open. */
function restPath(op: string, fields: Fields): string {
  return op === "permission" ? `permissions/${encodeURIComponent(String(fields.request_id))}` : op;
}

export class SessionStream {
  /** The seq of the last event handed on. */
  lastSeq: number;
  private socket: WebSocket | null = null;
  private opened = false;
  private closed = false;
  private exited = false;
  private attempts = 0;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private nextId = 1;
  private readonly acks = new Map<number, { resolve: (frame: Fields) => void; reject: (error: Error) => void }>();
  private processing: Promise<void> = Promise.resolve();

  constructor(
    private readonly api: Api,
    /** `/v1/sandboxes/{sbx}/agent/{ses}` */
    private readonly path: string,
    private readonly handlers: StreamHandlers,
    after = 0,
  ) {
    this.lastSeq = after;
  }

  open(): void {
    if (this.closed) return;
    this.handlers.connection(this.attempts ? "reconnecting" : "connecting");
    const socket = this.api.socket(`${this.path}/ws`, { after: this.lastSeq, batch: BATCH });
    this.socket = socket;
    this.opened = false;
    socket.onopen = () => {
      this.opened = true;
      this.handlers.connection("replaying");
    };
    socket.onmessage = (message: MessageEvent) => {
      const frames = framesOf(message.data);
      this.processing = this.processing.then(() => this.receive(frames)).catch((error: unknown) => this.fail(error));
    };
    socket.onclose = () => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.processing = this.processing.then(() => this.lost());
    };
  }

  private async receive(frames: Fields[]): Promise<void> {
    const events: AgentEvent[] = [];
    for (const frame of frames) {
      if (frame.type === "ack") {
        const waiter = this.acks.get(frame.id as number);
        this.acks.delete(frame.id as number);
        waiter?.resolve(frame);
      } else if (frame.type === "scrollback_end") {
        this.attempts = 0;
        this.handlers.connection("live");
      } else if (typeof frame.seq === "number") {
        if (frame.seq <= this.lastSeq) continue; // seen before this reconnect
        if (frame.seq > this.lastSeq + 1) {
          this.flush(events);
          await this.fillGap(frame.seq);
        }
        this.lastSeq = frame.seq;
        if (frame.type === "exit") this.exited = true;
        events.push(frame as unknown as AgentEvent);
      } else if (frame.type === "error") {
        throw errorFrom(0, String(frame.code ?? "error"), String(frame.message ?? "the stream was refused"));
      }
    }
    this.flush(events);
  }

  private flush(events: AgentEvent[]): void {
    if (events.length) this.handlers.events(events.splice(0));
  }

  private async fillGap(seq: number): Promise<void> {
    while (this.lastSeq + 1 < seq) {
      const page = await this.api.get<{ events: AgentEvent[] }>(`${this.path}/events`, {
        after: this.lastSeq,
        limit: Math.min(10_000, seq - this.lastSeq - 1),
      });
      const missing = page.events.filter((event) => event.seq > this.lastSeq && event.seq < seq);
      if (!missing.length) throw new ConnectionLost(`events ${this.lastSeq + 1} to ${seq - 1} are missing`);
      this.lastSeq = missing[missing.length - 1]!.seq;
      this.handlers.events(missing);
    }
  }

  private async lost(): Promise<void> {
    for (const waiter of this.acks.values()) {
      waiter.reject(new ConnectionLost("the connection closed before the server answered"));
    }
    this.acks.clear();
    if (this.closed) return;
    if (this.exited) return this.handlers.connection("ended");
    if (!this.opened) {
      // A refused handshake looks like any dropped connection to a browser: ask REST whether the session is
      // there and the credential still good, and give up only on a definite no.
      try {
        await this.api.get(this.path);
      } catch (error) {
        if (error instanceof CoveError && !(error instanceof ConnectionLost)) return this.fail(error);
      }
    }
    this.attempts += 1;
    this.handlers.connection("reconnecting");
    const delay = Math.min(250 * 2 ** (this.attempts - 1), MAX_DELAY_MS);
    this.retry = setTimeout(() => this.open(), delay);
  }

  private fail(error: unknown): void {
    const failure = error instanceof CoveError ? error : new CoveError(String(error), { cause: error });
    this.closed = true;
    this.socket?.close();
    this.handlers.connection("failed", failure);
  }

  /** Send a command; resolves with its result, or rejects with the typed error of its refusal. */
  async command<T>(op: "prompt" | "interrupt" | "configure" | "permission", fields: Fields = {}): Promise<T> {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) {
      const id = this.nextId++;
      const ack = new Promise<Fields>((resolve, reject) => this.acks.set(id, { resolve, reject }));
      socket.send(JSON.stringify({ ...fields, op, id }));
      const frame = await ack;
      if (frame.ok) return frame.result as T;
      const error = (frame.error ?? {}) as { code?: string; message?: string; status?: number };
      throw errorFrom(error.status ?? 400, error.code ?? "error", error.message ?? `${op} refused`);
    }
    const { request_id: _, ...body } = fields;
    return this.api.post<T>(`${this.path}/${restPath(op, fields)}`, body);
  }

  /** Stop following: the session goes on in its sandbox. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }
}

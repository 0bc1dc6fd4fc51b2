/**
 * A WebSocket that opens again after a drop, from where it got to (each kind says where: byte offsets for a
 * process's output, an offset for a terminal's), until it is closed or its stream has ended.
 */

import { Observable } from "../lib/observable.js";
import type { Api, Query } from "./client.js";

const RETRY_MS = 1000;

export abstract class ResumingSocket extends Observable {
  /** The stream is over (the process or terminal exited, or the server refused it): no more reconnecting. */
  ended = false;
  /** The program's exit code, once its stream said it exited. */
  exitCode: number | null = null;
  /** Why the server ended the stream, if it refused it. */
  error: string | null = null;
  protected socket: WebSocket | null = null;
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(protected readonly api: Api) {
    super();
  }

  /** Where to connect, from what has arrived so far. */
  protected abstract target(): { path: string; query: Query };

  protected abstract receive(data: unknown): void;

  /** An `exit` frame (its `field` holds the program's info) or an `error` frame ends the stream; others do not. */
  protected endOn(frame: Record<string, unknown>, field: string): void {
    if (frame.type === "exit") {
      const info = (frame[field] ?? {}) as { exit_code?: unknown };
      this.exitCode = typeof info.exit_code === "number" ? info.exit_code : null;
    } else if (frame.type === "error") {
      this.error = String(frame.message ?? frame.code ?? "the stream failed");
    } else {
      return;
    }
    this.ended = true;
  }

  /** The socket is open (again): what waited for it may go. */
  protected opened(): void {}

  open(): void {
    const { path, query } = this.target();
    const socket = this.api.socket(path, query);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => this.opened();
    socket.onmessage = (message: MessageEvent) => {
      this.receive(message.data);
      this.notify();
    };
    socket.onclose = () => {
      if (this.closed || this.ended || socket !== this.socket) return;
      this.retry = setTimeout(() => this.open(), RETRY_MS);
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }
}

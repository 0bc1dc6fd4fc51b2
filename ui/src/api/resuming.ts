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
  protected socket: WebSocket | null = null;
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(protected readonly api: Api) {
    super();
  }

  /** Where to connect, from what has arrived so far. */
  protected abstract target(): { path: string; query: Query };

  protected abstract receive(data: unknown): void;

  open(): void {
    const { path, query } = this.target();
    const socket = this.api.socket(path, query);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
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

/**
 * What a process handle and a terminal handle share: a stream of items over one WebSocket that, when the socket
 * drops, attaches again from where it got to (the subclass knows how), and ends with the thing's final info or
 * with an error — as the Python SDK's handles do.
 */

import { ConnectionLost, CoveError, errorFrom } from "./errors.js";
import { type Channel, type CoveClient, type Frame, closeError } from "./transport.js";

const RECONNECT_ATTEMPTS = 5;

/** The error an `error` frame carries. */
export function frameError(frame: Frame, fallback: string): CoveError {
  return errorFrom(0, String(frame.code ?? "error"), String(frame.message ?? fallback));
}

export abstract class ReattachingStream<Item, Info> implements AsyncIterable<Item> {
  protected channel: Channel;
  protected readonly queue: (Item | null)[] = [];
  private wakeReader: (() => void) | undefined;
  protected readonly exit: Promise<Info>;
  private settle!: { resolve: (info: Info) => void; reject: (error: CoveError) => void };
  protected failure: CoveError | undefined;
  protected finished = false;
  private closed = false;
  private reconnecting: Promise<void> | undefined;

  /** Subclasses call `listen()` at the end of their constructor, once their own fields are set. */
  protected constructor(
    protected readonly client: CoveClient,
    channel: Channel,
  ) {
    this.channel = channel;
    this.exit = new Promise<Info>((resolve, reject) => (this.settle = { resolve, reject }));
    this.exit.catch(() => undefined); // surfaced by wait() and iteration, never as an unhandled rejection
  }

  /** One frame of the stream. */
  protected abstract handle(frame: Frame): void;

  /** A new connection that resumes where this one got to (its hello read); `null` to try again later. */
  protected abstract reopen(): Promise<Channel | null>;

  /** What the stream is of, for messages. */
  protected abstract get label(): string;

  protected listen(): void {
    this.channel.listen(
      (frame) => this.handle(frame),
      (code, reason) => void this.lost(code, reason),
    );
  }

  private async lost(code: number, reason: string): Promise<void> {
    if (this.finished || this.closed) return;
    const refused = closeError(code, reason);
    if (refused) return this.fail(refused);
    this.reconnecting = this.reattach();
    await this.reconnecting;
  }

  private async reattach(): Promise<void> {
    for (let attempt = 1; attempt <= RECONNECT_ATTEMPTS; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      if (this.closed || this.finished) return;
      try {
        const channel = await this.reopen();
        if (channel === null) continue;
        this.channel = channel;
        this.reconnecting = undefined;
        this.listen();
        return;
      } catch (error) {
        if (error instanceof CoveError && !(error instanceof ConnectionLost)) return this.fail(error);
      }
    }
    this.fail(new ConnectionLost(`lost the stream of ${this.label} and could not resume`));
  }

  /** The stream ended as it should: `info` is the thing's final state. */
  protected finish(info: Info): void {
    this.finished = true;
    this.push(null);
    this.settle.resolve(info);
    this.channel.close();
  }

  protected fail(error: CoveError): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = error;
    this.push(null);
    this.settle.reject(error);
    this.channel.close();
  }

  protected push(item: Item | null): void {
    this.queue.push(item);
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }

  /** The next item not yet taken; `null` once the stream has ended (and for every read after). */
  protected async next(): Promise<Item | null> {
    while (!this.queue.length) await new Promise<void>((resolve) => (this.wakeReader = resolve));
    const item = this.queue[0]!;
    if (item === null) {
      if (this.failure) throw this.failure;
      return null;
    }
    this.queue.shift();
    return item;
  }

  /** Items as they come, until the stream ends; throws if it fails. */
  async *[Symbol.asyncIterator](): AsyncIterator<Item> {
    for (let item = await this.next(); item !== null; item = await this.next()) yield item;
  }

  /** Send on the current connection, or the one a re-attach opens; nothing once the stream has ended. */
  protected async send(send: (channel: Channel) => void): Promise<void> {
    for (let attempt = 0; attempt <= RECONNECT_ATTEMPTS * 10; attempt++) {
      if (this.reconnecting) await this.reconnecting;
      if (this.failure) throw this.failure;
      if (this.finished) return;
      if (this.channel.open) return send(this.channel);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the drop is still being reported: a re-attach follows
    }
    throw new ConnectionLost(`cannot reach ${this.label} to send it input`);
  }

  /** Stop watching; what is watched keeps running. */
  close(): void {
    this.closed = true;
    this.channel.close();
  }

  /** @internal Drop the socket as a network failure would: the handle re-attaches by itself. */
  dropConnection(): void {
    this.channel.terminate();
  }
}

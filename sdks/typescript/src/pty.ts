/**
 * Terminals: `sandbox.pty` — a program on a pseudo-terminal in the sandbox, its bytes over a WebSocket
 * (protocol at the top of `src/cove/api/routes/ptys.py`). The terminal lives in the sandbox, not in the handle:
 * closing the handle (or losing the connection) leaves its program running, and `attach` shows its recent screen
 * again, then what comes live — as the Python SDK's `PtyHandle` does.
 */

import { ConnectionLost, CoveError } from "./errors.js";
import { ReattachingStream, frameError } from "./stream.js";
import { type Channel, type CoveClient, type Frame, closeError } from "./transport.js";
import { type PtyInfo, ptyInfoFrom } from "./types.js";

const encoder = new TextEncoder();

/** Options of `sandbox.pty.create`. */
export interface PtyCreateOptions {
  /** A bash line, or an argv list (default `"bash -l"`). */
  command?: string | string[];
  /** Columns (default 80). */
  cols?: number;
  /** Rows (default 24). */
  rows?: number;
  /** Added to the sandbox's environment; `TERM` defaults to `xterm-256color`. */
  env?: Record<string, string>;
  /** Working directory (the sandbox's by default). */
  cwd?: string;
  /** Called with every piece of output as it arrives. */
  onData?: (data: Uint8Array) => void;
}

/** Options of `sandbox.pty.attach`. */
export interface PtyAttachOptions {
  /** Resume after this many bytes of output (`handle.offset`); left out, all the terminal keeps is replayed. */
  offset?: number;
  onData?: (data: Uint8Array) => void;
}

async function attached(client: CoveClient, path: string, offset?: number): Promise<{ channel: Channel; hello: Frame }> {
  const channel = await client.websocket(`${path}/ws`, offset === undefined ? undefined : { offset });
  const hello = await channel.next();
  if (hello === null) {
    const closed = channel.closeInfo;
    throw closeError(closed?.code ?? 0, closed?.reason ?? "") ?? new ConnectionLost("the terminal closed before it attached");
  }
  if (hello.type !== "attached") {
    channel.close();
    throw frameError(hello, "the terminal refused the attach");
  }
  return { channel, hello };
}

/**
 * A terminal streaming over a WebSocket: iterate it (`for await (const data of terminal)`) or pass `onData` for
 * its bytes, `write` to type into it. A dropped connection is re-attached from the last byte received.
 */
export class PtyHandle extends ReattachingStream<Uint8Array, PtyInfo> {
  /** The terminal as last reported (its final state once its program has exited). */
  info: PtyInfo;
  private position: number;
  private unread: Uint8Array = new Uint8Array(0);

  /** @internal Use `sandbox.pty.create` or `sandbox.pty.attach`. */
  constructor(
    client: CoveClient,
    private readonly path: string,
    channel: Channel,
    hello: Frame,
    private readonly onData?: (data: Uint8Array) => void,
  ) {
    super(client, channel);
    this.info = ptyInfoFrom(hello.pty as Record<string, unknown>);
    this.position = Number(hello.offset);
    this.listen();
  }

  /** The terminal's id, for `pty.attach`, `pty.get`, `pty.resize` and `pty.kill`. */
  get ptyId(): string {
    return this.info.ptyId;
  }

  /** The offset just past the last byte received: where `pty.attach(ptyId, { offset })` resumes. */
  get offset(): number {
    return this.position;
  }

  protected get label(): string {
    return `terminal ${this.ptyId}`;
  }

  protected handle(frame: Frame): void {
    if (this.finished) return;
    if (frame.type === "bytes") {
      const data = frame.data as Uint8Array;
      this.position += data.length;
      this.onData?.(data);
      this.push(data);
    } else if (frame.type === "offset") {
      this.position = Number(frame.offset); // the output skips ahead: what lay between was more than it keeps
    } else if (frame.type === "exit") {
      this.info = ptyInfoFrom(frame.pty as Record<string, unknown>);
      this.finish(this.info);
    } else if (frame.type === "error") {
      this.fail(frameError(frame, "terminal stream error"));
    }
  }

  protected async reopen(): Promise<Channel | null> {
    const { channel, hello } = await attached(this.client, this.path, this.position);
    this.position = Number(hello.offset); // further on, if the terminal no longer keeps what was missed
    return channel;
  }

  /** The next output not yet read, what `readUntil` left first; `null` once the terminal has ended. */
  protected override async next(): Promise<Uint8Array | null> {
    if (this.unread.length) {
      const unread = this.unread;
      this.unread = new Uint8Array(0);
      return unread;
    }
    return super.next();
  }

  /**
   * Output up to and including `marker` (what follows it stays for the next read): for scripts that type a
   * command and wait for its prompt.
   *
   * @example
   * await terminal.write("echo hi\n");
   * await terminal.readUntil("hi\r\n");
   */
  async readUntil(marker: string | Uint8Array, timeoutMs = 10_000): Promise<Uint8Array> {
    const wanted = Buffer.from(typeof marker === "string" ? encoder.encode(marker) : marker);
    let seen = Buffer.alloc(0);
    const deadline = Date.now() + timeoutMs;
    try {
      while (seen.indexOf(wanted) < 0) {
        const left = deadline - Date.now();
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), Math.max(left, 0))));
        const data = await Promise.race([this.next(), timeout]);
        clearTimeout(timer);
        if (data === "timeout") throw new CoveError(`${JSON.stringify(wanted.toString())} did not appear in ${timeoutMs} ms`);
        if (data === null) throw new ConnectionLost(`terminal ${this.ptyId} ended before ${JSON.stringify(wanted.toString())} appeared`);
        seen = Buffer.concat([seen, data]);
      }
    } catch (error) {
      this.unread = new Uint8Array(Buffer.concat([seen, this.unread])); // nothing read is lost to the next read
      throw error;
    }
    const end = seen.indexOf(wanted) + wanted.length;
    this.unread = new Uint8Array(seen.subarray(end));
    return new Uint8Array(seen.subarray(0, end));
  }

  /** Type into the terminal: `"ls\n"`, `"\x03"` (Ctrl-C), `"\x04"` (Ctrl-D). */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    await this.send((channel) => channel.sendBytes(bytes));
  }

  /** The program sees the new size at once (SIGWINCH). */
  async resize(cols: number, rows: number): Promise<void> {
    await this.send((channel) => channel.send({ type: "resize", cols, rows }));
  }

  /** Signal the terminal's program (and what it runs in the foreground), by name or number. */
  async signal(signal: string | number = "SIGINT"): Promise<void> {
    await this.send((channel) => channel.send({ type: "signal", signal }));
  }

  /** Kill the terminal's program (SIGKILL). */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  /** The terminal's final info, once its program has exited and its output was all received. (`close()` stops
   * watching; the program keeps running: `pty.attach` to it again.) */
  wait(): Promise<PtyInfo> {
    return this.exit;
  }

}

/** Terminals in one sandbox: `sandbox.pty`. */
export class Pty {
  private readonly path: string;

  /** @internal */
  constructor(
    private readonly client: CoveClient,
    sandboxId: string,
  ) {
    this.path = `/v1/sandboxes/${sandboxId}/pty`;
  }

  /**
   * Start a program on a new terminal and attach to it.
   *
   * @example
   * const terminal = await sandbox.pty.create({ command: "python3 -q", cols: 120, rows: 40 });
   * await terminal.readUntil(">>> ");
   * await terminal.write("6 * 7\n");
   */
  async create(options: PtyCreateOptions = {}): Promise<PtyHandle> {
    const body = {
      command: options.command ?? "bash -l",
      cols: options.cols ?? 80,
      rows: options.rows ?? 24,
      env: options.env ?? {},
      cwd: options.cwd ?? null,
    };
    const info = ptyInfoFrom(await this.client.request("POST", this.path, { json: body }));
    return this.attach(info.ptyId, { offset: 0, onData: options.onData });
  }

  /** Attach to a terminal: its recent output (all it keeps, or from `offset`), then live. */
  async attach(ptyId: string, options: PtyAttachOptions = {}): Promise<PtyHandle> {
    const path = `${this.path}/${ptyId}`;
    const { channel, hello } = await attached(this.client, path, options.offset);
    return new PtyHandle(this.client, path, channel, hello, options.onData);
  }

  /** The sandbox's terminals, running and recently ended. */
  async list(): Promise<PtyInfo[]> {
    const reply = await this.client.request<{ ptys: Record<string, unknown>[] }>("GET", this.path);
    return reply.ptys.map(ptyInfoFrom);
  }

  /** One terminal; throws `PtyNotFound` for an unknown id. */
  async get(ptyId: string): Promise<PtyInfo> {
    return ptyInfoFrom(await this.client.request("GET", `${this.path}/${ptyId}`));
  }

  /** Change a terminal's size from anywhere (an attached handle has `resize` too). */
  async resize(ptyId: string, cols: number, rows: number): Promise<PtyInfo> {
    return ptyInfoFrom(await this.client.request("POST", `${this.path}/${ptyId}/resize`, { json: { cols, rows } }));
  }

  /** Signal a terminal's program (SIGKILL by default: the terminal closes once it is gone). */
  async kill(ptyId: string, signal: string | number = "SIGKILL"): Promise<PtyInfo> {
    return ptyInfoFrom(await this.client.request("POST", `${this.path}/${ptyId}/signal`, { json: { signal } }));
  }
}

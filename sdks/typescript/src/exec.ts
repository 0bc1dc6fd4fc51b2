/**
 * Commands in a sandbox: run to completion over REST, or stream over the exec WebSocket (protocol at the top
 * of `src/cove/api/routes/execs.py`). A streamed process that loses its socket re-attaches from the byte
 * offsets it has, so no output is lost or repeated — as the Python SDK's `ProcessHandle` does.
 */

import { CommandTimeout, ConnectionLost } from "./errors.js";
import { ReattachingStream, frameError } from "./stream.js";
import { type Channel, type CoveClient, type Frame, closeError } from "./transport.js";
import {
  type CommandOptions,
  type ExecResult,
  type ProcessInfo,
  execResultFrom,
  processInfoFrom,
} from "./types.js";


/** Bytes a process wrote; `offset` is where they start in their stream, for re-attaching. */
export interface OutputChunk {
  stream: "stdout" | "stderr";
  data: Uint8Array;
  offset: number;
  /** The bytes decoded as UTF-8. */
  readonly text: string;
}

/**
 * The end of a streamed process, shaped as `exec.run`'s `ExecResult`: the same fields under the same names
 * (`stdout` and `stderr` as text), but `oomKilled`, which only `exec.run` measures. The raw bytes are
 * `stdoutData` and `stderrData`, and `process` is the process's final info.
 */
export interface ProcessResult extends Omit<ExecResult, "oomKilled"> {
  process: ProcessInfo;
  /** What the process wrote to stdout while the handle watched. */
  stdoutData: Uint8Array;
  stderrData: Uint8Array;
  /** @deprecated The same as `stdout` (its first name). */
  readonly stdoutText: string;
  /** @deprecated The same as `stderr` (its first name). */
  readonly stderrText: string;
}

/** Callbacks for a streamed process. */
export interface StreamCallbacks {
  onStdout?: (data: Uint8Array) => void;
  onStderr?: (data: Uint8Array) => void;
  onExit?: (exitCode: number | null, process: ProcessInfo) => void;
}

/** Options of `exec.start`. */
export interface StartOptions extends CommandOptions, StreamCallbacks {
  /** A label to find the process by in `exec.list()`. */
  tag?: string;
}

/** Options of `exec.run`. */
export interface RunOptions extends CommandOptions {
  /** Text fed to the command's standard input. */
  stdin?: string;
  /** Throw `CommandTimeout` when the command timed out (default true); else return the result. */
  checkTimeout?: boolean;
}

const decoder = new TextDecoder();

function chunk(stream: "stdout" | "stderr", data: Uint8Array, offset: number): OutputChunk {
  return {
    stream,
    data,
    offset,
    get text() {
      return decoder.decode(data);
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * A process streaming over a WebSocket. Iterate it (`for await (const chunk of handle)`) or pass callbacks;
 * `wait()` resolves on exit. The process outlives the handle: `close()` only stops watching.
 */
export class ProcessHandle extends ReattachingStream<OutputChunk, ProcessInfo> {
  /** The process as last reported (refreshed on exit). */
  info: ProcessInfo;
  private readonly cursor = { stdout: 0, stderr: 0 };
  private readonly buffers: Record<"stdout" | "stderr", Uint8Array[]> = { stdout: [], stderr: [] };

  /** @internal Use `sandbox.exec.start` or `sandbox.exec.attach`. */
  constructor(
    client: CoveClient,
    private readonly sandboxId: string,
    channel: Channel,
    info: ProcessInfo,
    private readonly callbacks: StreamCallbacks = {},
    offsets: { stdout: number; stderr: number } = { stdout: 0, stderr: 0 },
  ) {
    super(client, channel);
    this.info = info;
    this.cursor = { ...offsets };
    this.listen();
  }

  /** The process id, for `exec.attach`, `exec.kill` and `exec.get`. */
  get processId(): string {
    return this.info.processId;
  }

  /** Byte offsets after the last chunk received, per stream — where a re-attach resumes. */
  get offsets(): { stdout: number; stderr: number } {
    return { ...this.cursor };
  }

  /** @deprecated The same as `offsets` (its first name; docs/names.md). */
  get position(): { stdout: number; stderr: number } {
    return this.offsets;
  }

  protected get label(): string {
    return `process ${this.processId}`;
  }

  protected handle(frame: Frame): void {
    if (this.finished) return;
    const kind = frame.type;
    if (kind === "stdout" || kind === "stderr") {
      let data: Uint8Array = Buffer.from(String(frame.data ?? ""), "base64");
      const offset = Number(frame.offset);
      // A chunk that overlaps what we already have (a re-attach racing the old socket) is trimmed.
      const skip = this.cursor[kind] - offset;
      if (skip >= data.length) return;
      if (skip > 0) data = data.subarray(skip);
      const item = chunk(kind, data, this.cursor[kind]);
      this.cursor[kind] += data.length;
      this.buffers[kind].push(data);
      (kind === "stdout" ? this.callbacks.onStdout : this.callbacks.onStderr)?.(data);
      this.push(item);
    } else if (kind === "exit") {
      this.info = processInfoFrom(frame.process as Record<string, unknown>);
      this.finish(this.info);
      this.callbacks.onExit?.(this.info.exitCode, this.info);
    } else if (kind === "error") {
      this.fail(frameError(frame, "stream error"));
    }
  }

  protected async reopen(): Promise<Channel | null> {
    const channel = await this.client.websocket(`/v1/sandboxes/${this.sandboxId}/processes/${this.processId}/ws`, {
      stdout_offset: this.cursor.stdout,
      stderr_offset: this.cursor.stderr,
    });
    const hello = await channel.next();
    if (hello?.type === "error") throw frameError(hello, "attach failed");
    return hello === null ? null : channel;
  }

  /**
   * Wait for the process to exit. Rejects with `CommandTimeout` if it ran past its timeout.
   *
   * @example
   * const handle = await sandbox.exec.start("make test");
   * const { exitCode, stdout } = await handle.wait();
   */
  async wait(): Promise<ProcessResult> {
    const info = await this.exit;
    if (info.timedOut) {
      throw new CommandTimeout(`process ${info.processId} timed out and was killed`);
    }
    const stdoutData = concat(this.buffers.stdout);
    const stderrData = concat(this.buffers.stderr);
    const stdout = decoder.decode(stdoutData);
    const stderr = decoder.decode(stderrData);
    return {
      processId: info.processId,
      exitCode: info.exitCode,
      stdout,
      stderr,
      duration: (info.endedAt ?? info.startedAt) - info.startedAt,
      timedOut: info.timedOut,
      signal: info.signal,
      truncated: false, // a stream hands out every byte
      process: info,
      stdoutData,
      stderrData,
      stdoutText: stdout,
      stderrText: stderr,
    };
  }

  private async sendFrame(frame: Record<string, unknown>): Promise<void> {
    await this.send((channel) => channel.send(frame));
  }

  /** Feed the process's standard input. */
  async sendStdin(data: string | Uint8Array): Promise<void> {
    const raw = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.sendFrame({ type: "stdin", data: raw.toString("base64") });
  }

  /** Close the process's standard input (it reads end-of-file). */
  async closeStdin(): Promise<void> {
    await this.sendFrame({ type: "stdin_close" });
  }

  /** Send a signal, by name (`"SIGTERM"`) or number. */
  async signal(signal: string | number = "SIGTERM"): Promise<void> {
    await this.sendFrame({ type: "signal", signal });
  }

  /** Kill the process (SIGKILL). */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

}

async function openStream(
  client: CoveClient,
  sandboxId: string,
  channel: Channel,
  callbacks: StreamCallbacks,
  offsets?: { stdout: number; stderr: number },
): Promise<ProcessHandle> {
  const hello = await channel.next();
  if (hello === null) {
    const closed = channel.closeInfo;
    throw closeError(closed?.code ?? 0, closed?.reason ?? "") ?? new ConnectionLost("the stream closed before it started");
  }
  if (hello.type === "error") {
    channel.close();
    throw frameError(hello, "stream refused");
  }
  return new ProcessHandle(client, sandboxId, channel, processInfoFrom(hello.process as Record<string, unknown>), callbacks, offsets);
}

/** Commands in one sandbox: `sandbox.exec`. */
export class Exec {
  private readonly path: string;

  /** @internal */
  constructor(
    private readonly client: CoveClient,
    private readonly sandboxId: string,
  ) {
    this.path = `/v1/sandboxes/${sandboxId}`;
  }

  /**
   * Run a command to completion. A string runs through bash; an array runs as argv.
   *
   * Every process the command started ends with it: `server &` inside `run` dies when the command returns.
   * Start what should keep running with `exec.background` (or `exec.start`).
   *
   * @example
   * const result = await sandbox.exec.run("echo hi");
   * result.stdout; // "hi\n"
   */
  async run(command: string | string[], options: RunOptions = {}): Promise<ExecResult> {
    const body = {
      command,
      env: options.env ?? {},
      cwd: options.cwd ?? null,
      timeout: options.timeout ?? null,
      stdin: options.stdin ?? null,
    };
    const result = execResultFrom(await this.client.request("POST", `${this.path}/exec`, { json: body }));
    if (result.timedOut && options.checkTimeout !== false) {
      throw new CommandTimeout(`command timed out after ${options.timeout}s: ${JSON.stringify(command)}`);
    }
    return result;
  }

  /**
   * Start a process and stream it: output as it comes, stdin open until `closeStdin()`.
   *
   * @example
   * const cat = await sandbox.exec.start("cat", { onStdout: (d) => process.stdout.write(d) });
   * await cat.sendStdin("hello\n");
   * await cat.closeStdin();
   * await cat.wait();
   */
  async start(command: string | string[], options: StartOptions = {}): Promise<ProcessHandle> {
    const channel = await this.client.websocket(`${this.path}/exec/ws`);
    channel.send({
      command,
      env: options.env ?? {},
      cwd: options.cwd ?? null,
      timeout: options.timeout ?? null,
      tag: options.tag ?? null,
    });
    return openStream(this.client, this.sandboxId, channel, options);
  }

  /** Start a process that runs on its own, with no stream attached; stdin is /dev/null. */
  async background(command: string | string[], options: CommandOptions & { tag?: string } = {}): Promise<ProcessInfo> {
    const body = {
      command,
      env: options.env ?? {},
      cwd: options.cwd ?? null,
      timeout: options.timeout ?? null,
      tag: options.tag ?? null,
      background: true,
    };
    return processInfoFrom(await this.client.request("POST", `${this.path}/exec`, { json: body }));
  }

  /**
   * Re-attach to a process: its output from the given byte offsets (default: all of it), then live.
   */
  async attach(
    processId: string,
    options: StreamCallbacks & { stdoutOffset?: number; stderrOffset?: number } = {},
  ): Promise<ProcessHandle> {
    const offsets = { stdout: options.stdoutOffset ?? 0, stderr: options.stderrOffset ?? 0 };
    const channel = await this.client.websocket(`${this.path}/processes/${processId}/ws`, {
      stdout_offset: offsets.stdout,
      stderr_offset: offsets.stderr,
    });
    return openStream(this.client, this.sandboxId, channel, options, offsets);
  }

  /** Every process of the sandbox, running or not. */
  async list(): Promise<ProcessInfo[]> {
    const reply = await this.client.request<{ processes: Record<string, unknown>[] }>("GET", `${this.path}/processes`);
    return reply.processes.map(processInfoFrom);
  }

  /** One process. */
  async get(processId: string): Promise<ProcessInfo> {
    return processInfoFrom(await this.client.request("GET", `${this.path}/processes/${processId}`));
  }

  /** Signal a process (default SIGKILL) and return its state. */
  async kill(processId: string, signal: string | number = "SIGKILL"): Promise<ProcessInfo> {
    return processInfoFrom(
      await this.client.request("POST", `${this.path}/processes/${processId}/signal`, { json: { signal } }),
    );
  }
}

/**
 * A process's output, live: the WebSocket attach (`…/processes/{id}/ws`) replays from the byte offsets the page
 * has, then follows. A dropped connection re-attaches from those offsets, so nothing is lost or repeated. Only the
 * last `KEEP` characters are kept for the page: a process may write gigabytes.
 */

import { type Api, framesOf } from "./client.js";
import { sandboxPath } from "./resources.js";
import { Observable } from "../lib/observable.js";

const KEEP = 1 << 20;

function decodeBase64(data: unknown): Uint8Array {
  const binary = atob(typeof data === "string" ? data : "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export class ProcessOutput extends Observable {
  text = "";
  /** Characters dropped from the front to keep `text` bounded. */
  dropped = 0;
  exitCode: number | null = null;
  ended = false;
  error: string | null = null;
  private readonly offsets = { stdout: 0, stderr: 0 };
  private readonly decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  private socket: WebSocket | null = null;
  private closed = false;
  private retry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly api: Api,
    private readonly sandboxId: string,
    readonly processId: string,
  ) {
    super();
  }

  open(): void {
    const path = `${sandboxPath(this.sandboxId)}/processes/${encodeURIComponent(this.processId)}/ws`;
    const socket = this.api.socket(path, { stdout_offset: this.offsets.stdout, stderr_offset: this.offsets.stderr });
    this.socket = socket;
    socket.onmessage = (message: MessageEvent) => {
      for (const frame of framesOf(message.data)) this.receive(frame);
      this.notify();
    };
    socket.onclose = () => {
      if (this.closed || this.ended || socket !== this.socket) return;
      this.retry = setTimeout(() => this.open(), 1000);
    };
  }

  private receive(frame: Record<string, unknown>): void {
    if (frame.type === "stdout" || frame.type === "stderr") {
      const stream = frame.type;
      const bytes = decodeBase64(frame.data);
      const offset = typeof frame.offset === "number" ? frame.offset : this.offsets[stream];
      // A replay may start before what we have: skip the bytes already shown.
      const fresh = bytes.subarray(Math.max(0, this.offsets[stream] - offset));
      this.offsets[stream] = Math.max(this.offsets[stream], offset + bytes.length);
      this.append(this.decoders[stream].decode(fresh, { stream: true }));
    } else if (frame.type === "exit") {
      const info = (frame.process ?? {}) as { exit_code?: unknown };
      this.exitCode = typeof info.exit_code === "number" ? info.exit_code : null;
      this.ended = true;
    } else if (frame.type === "error") {
      this.error = String(frame.message ?? frame.code ?? "the stream failed");
      this.ended = true;
    }
  }

  private append(text: string): void {
    this.text += text;
    if (this.text.length > KEEP) {
      const cut = this.text.length - KEEP;
      this.dropped += cut;
      this.text = this.text.slice(cut);
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.socket?.close();
  }
}

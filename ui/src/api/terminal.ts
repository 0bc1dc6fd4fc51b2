/**
 * A terminal's bytes, live (docs/terminals.md): binary frames are its output and the keys typed, text frames JSON
 * (`attached`, `offset`, `exit`, `error` from the server; `resize` to it). The page keeps the offset just past the
 * last byte it drew, so a dropped connection re-attaches from there and draws nothing twice; keys typed while
 * the connection is down wait for it.
 */

import { type Api, framesOf } from "./client.js";
import { sandboxPath } from "./resources.js";
import { ResumingSocket } from "./resuming.js";

/** What `GET …/pty` lists (`PtyInfo`). */
export interface TerminalInfo {
  pty_id: string;
  command: string[];
  running: boolean;
  exit_code: number | null;
  /** Unix time. */
  started_at: number;
}

export async function listTerminals(api: Api, sandboxId: string, signal?: AbortSignal): Promise<TerminalInfo[]> {
  const reply = await api.request<{ ptys: TerminalInfo[] }>("GET", `${sandboxPath(sandboxId)}/pty`, { signal });
  return reply.ptys;
}

export async function createTerminal(api: Api, sandboxId: string, cols: number, rows: number): Promise<TerminalInfo> {
  return api.post<TerminalInfo>(`${sandboxPath(sandboxId)}/pty`, { cols, rows });
}

export async function killTerminal(api: Api, sandboxId: string, ptyId: string): Promise<void> {
  await api.request("DELETE", `${sandboxPath(sandboxId)}/pty/${encodeURIComponent(ptyId)}`);
}

export class TerminalStream extends ResumingSocket {
  /** Just past the last byte of output received; null until the first attach says where output starts. */
  offset: number | null = null;
  /** Where the output goes: the screen. */
  onOutput: (bytes: Uint8Array) => void = () => undefined;
  private readonly waiting: (Uint8Array | string)[] = [];
  private readonly encoder = new TextEncoder();

  constructor(
    api: Api,
    private readonly sandboxId: string,
    readonly ptyId: string,
  ) {
    super(api);
  }

  protected target() {
    const path = `${sandboxPath(this.sandboxId)}/pty/${encodeURIComponent(this.ptyId)}/ws`;
    return { path, query: { offset: this.offset } };
  }

  protected override opened(): void {
    for (const frame of this.waiting.splice(0)) this.socket?.send(frame);
  }

  protected receive(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.offset = (this.offset ?? 0) + data.byteLength;
      this.onOutput(new Uint8Array(data));
      return;
    }
    for (const frame of framesOf(data)) {
      if ((frame.type === "attached" || frame.type === "offset") && typeof frame.offset === "number") {
        this.offset = frame.offset;
      } else {
        this.endOn(frame, "pty");
      }
    }
  }

  /** Keys typed: sent as the terminal's input bytes. */
  type(keys: string): void {
    this.send(this.encoder.encode(keys));
  }

  resize(cols: number, rows: number): void {
    this.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  private send(frame: Uint8Array | string): void {
    if (this.ended) return;
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(frame);
    else this.waiting.push(frame);
  }
}

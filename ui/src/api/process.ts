/**
 * A process's output, live: the WebSocket attach (`…/processes/{id}/ws`) replays from the byte offsets the page
 * has, then follows; a dropped connection re-attaches from those offsets, so nothing is lost or repeated. Only
 * the last `KEEP` characters are kept for the page: a process may write gigabytes.
 */

import { type Api, framesOf } from "./client.js";
import { sandboxPath } from "./resources.js";
import { ResumingSocket } from "./resuming.js";

const KEEP = 1 << 20;

function decodeBase64(data: unknown): Uint8Array {
  const binary = atob(typeof data === "string" ? data : "");
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

export class ProcessOutput extends ResumingSocket {
  text = "";
  /** Characters dropped from the front to keep `text` bounded. */
  dropped = 0;
  private readonly offsets = { stdout: 0, stderr: 0 };
  private readonly decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };

  constructor(
    api: Api,
    private readonly sandboxId: string,
    readonly processId: string,
  ) {
    super(api);
  }

  protected target() {
    const path = `${sandboxPath(this.sandboxId)}/processes/${encodeURIComponent(this.processId)}/ws`;
    return { path, query: { stdout_offset: this.offsets.stdout, stderr_offset: this.offsets.stderr } };
  }

  protected receive(data: unknown): void {
    for (const frame of framesOf(data)) {
      if (frame.type === "stdout" || frame.type === "stderr") {
        const stream = frame.type;
        const bytes = decodeBase64(frame.data);
        const offset = typeof frame.offset === "number" ? frame.offset : this.offsets[stream];
        // A replay may start before what we have: skip the bytes already shown.
        const fresh = bytes.subarray(Math.max(0, this.offsets[stream] - offset));
        this.offsets[stream] = Math.max(this.offsets[stream], offset + bytes.length);
        this.append(this.decoders[stream].decode(fresh, { stream: true }));
      } else {
        this.endOn(frame, "process");
      }
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
}

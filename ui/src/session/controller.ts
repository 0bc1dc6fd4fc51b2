/**
 * One session as the page holds it: the model its events build, the stream that feeds it, and what the page
 * itself has sent — prompts still queued behind a running turn, answers on their way. Views subscribe and draw.
 */

import type { CoveError } from "@cove/sdk/errors.js";
import type { AgentEvent } from "@cove/sdk/events.js";

import type { Api } from "../api/client.js";
import { Observable } from "../lib/observable.js";
import { SessionModel } from "./model.js";
import { type Connection, SessionStream } from "./stream.js";

/** A prompt sent while a turn ran: it waits for its turn to start. */
export interface QueuedPrompt {
  turn: number;
  text: string;
}

export class SessionController extends Observable {
  readonly model = new SessionModel();
  connection: Connection = "connecting";
  /** Why the stream stopped for good, when it did. */
  failure: CoveError | null = null;
  queued: QueuedPrompt[] = [];
  private readonly stream: SessionStream;

  constructor(
    api: Api,
    readonly sandboxId: string,
    readonly sessionId: string,
  ) {
    super();
    const path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/agent/${encodeURIComponent(sessionId)}`;
    this.stream = new SessionStream(api, path, {
      events: (events) => this.take(events),
      connection: (state, error) => {
        this.connection = state;
        this.failure = error ?? null;
        this.notify();
      },
    });
  }

  open(): void {
    this.stream.open();
  }

  close(): void {
    this.stream.close();
  }

  private take(events: AgentEvent[]): void {
    this.model.apply(events);
    // A queued prompt leaves the queue when its turn starts.
    if (this.queued.length) this.queued = this.queued.filter((prompt) => prompt.turn > this.model.state.turn);
    this.notify();
  }

  /** Send a prompt; it runs at once, or after the prompts before it when a turn is running. */
  async prompt(text: string): Promise<void> {
    const receipt = await this.stream.command<{ queued: number; turn: number }>("prompt", { text });
    if (receipt.turn > this.model.state.turn) {
      this.queued = [...this.queued, { turn: receipt.turn, text }];
      this.notify();
    }
  }

  interrupt(): Promise<{ interrupted: boolean; turn: number | null }> {
    return this.stream.command("interrupt");
  }

  configure(changes: Record<string, unknown>): Promise<unknown> {
    return this.stream.command("configure", changes);
  }

  answer(requestId: string, decision: "allow" | "deny", message?: string): Promise<unknown> {
    const fields: Record<string, unknown> = { request_id: requestId, decision };
    if (decision === "deny" && message) fields.message = message;
    return this.stream.command("permission", fields);
  }
}

/**
 * Shared by the agent tests: a recorder that checks every event against `docs/events.schema.json` and that
 * seqs arrive in order with no gap and no duplicate, plus small waiting helpers.
 */

import assert from "node:assert/strict";

import type { AgentCallbacks, AgentEvent, CoveError, ExitEvent } from "../src/index.js";
import { eventValidator } from "./schema.js";

/** Callbacks that record what a session delivers, checking each event as it comes. */
export class Recorder {
  readonly events: AgentEvent[] = [];
  readonly errors: CoveError[] = [];
  readonly exits: { code: number; event: ExitEvent }[] = [];
  scrollbackEnds = 0;
  private readonly listeners: (() => void)[] = [];

  /** @param firstSeq the seq the first delivered event must have (1 unless attaching with `after`). */
  constructor(private readonly firstSeq = 1) {}

  /** The callbacks to pass to `agent.start` / `agent.attach`. */
  get callbacks(): Required<Omit<AgentCallbacks, "onPermission">> {
    return {
      onEvent: (event) => {
        const problems = eventValidator().validate(event);
        assert.deepEqual(problems, [], `event ${JSON.stringify(event).slice(0, 300)} breaks the schema`);
        const expected = this.events.length ? this.events.at(-1)!.seq + 1 : this.firstSeq;
        assert.equal(event.seq, expected, `seq ${event.seq} delivered where ${expected} was due`);
        this.events.push(event);
        for (const wake of this.listeners.splice(0)) wake();
      },
      onError: (error) => this.errors.push(error),
      onExit: (code, event) => this.exits.push({ code, event }),
      onScrollbackEnd: (event) => {
        assert.deepEqual(eventValidator().validate(event), []);
        this.scrollbackEnds += 1;
      },
    };
  }

  /** Resolves with the first recorded event matching `predicate` (waiting up to `timeoutMs`). */
  async waitFor(predicate: (event: AgentEvent) => boolean, timeoutMs = 60_000): Promise<AgentEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; saw ${this.types()}`);
      await new Promise<void>((resolve) => {
        this.listeners.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** The event types seen, for failure messages. */
  types(): string {
    return this.events.map((e) => `${e.seq}:${e.type}`).join(" ");
  }

  /** Everything Claude said in one turn: its assistant text blocks and the result. */
  textOfTurn(turn: number): string {
    let inTurn = false;
    const parts: string[] = [];
    for (const event of this.events) {
      if (event.type === "turn_started") inTurn = event.turn === turn;
      else if (inTurn && event.type === "assistant") {
        for (const block of event.content) if (block.type === "text") parts.push(block.text);
      } else if (inTurn && event.type === "result" && typeof event.result === "string") parts.push(event.result);
      if (event.type === "turn_complete" && event.turn === turn) inTurn = false;
    }
    return parts.join("\n");
  }
}

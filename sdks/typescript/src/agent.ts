/**
 * Agent sessions: Claude Code running in a sandbox as a durable session (`docs/agent-api.md`).
 *
 * Approvals: the session keeps its pending permission requests (`permission_requested` events with no
 * `permission_resolved` yet) and, given `onPermission`, asks it about each — those still pending when the replay
 * ends, then each new one — and sends its answer.
 *
 * Data flow: commands (prompt, interrupt, configure, kill) run one after the other in the order they were
 * called — prompt, interrupt and configure as frames on the session's open WebSocket (REST when none is
 * open), kill over REST (the server ends the stream after `exit`, which can overtake the acknowledgement of
 * a kill sent on it); events come over the session's WebSocket, replayed from `after=<last seq>` on every
 * (re)connect. Every event passes through `deliver`, which drops what was already seen and fills a gap from
 * the REST event log, so callers see each seq exactly once and in order.
 */

import { EventEmitter } from "node:events";

import {
  AgentError,
  AlreadyResolved,
  ConnectionLost,
  CoveError,
  SessionExited,
  TurnNotFound,
  errorFrom,
} from "./errors.js";
import type {
  AgentEvent,
  ExitEvent,
  PermissionRequestedEvent,
  ScrollbackEndEvent,
  TurnCompleteEvent,
} from "./events.js";
import { type TokenOptions, mintToken } from "./tokens.js";
import { type Channel, type CoveClient, type Frame, closeError } from "./transport.js";
import {
  type AgentSessionInfo,
  type McpServerConfig,
  type ModelInfo,
  type PermissionMode,
  type TokenInfo,
  type TurnDiff,
  agentSessionInfoFrom,
  modelInfoFrom,
  turnDiffFrom,
} from "./types.js";

const RECONNECT_ATTEMPTS = 8;
const KILL_WAIT_MS = 15_000;

/** A tool the agent asked to use and is waiting for (a `permission_requested` event not resolved yet). */
export interface PermissionRequest {
  requestId: string;
  toolName: string;
  input: Record<string, unknown>;
  /** Claude Code's suggested rules, which `approve(id, { remember: true })` applies. */
  suggestions: Record<string, unknown>[];
  toolUseId: string | null;
  event: PermissionRequestedEvent;
}

/** An answer to a permission request; who gave it is the server's to say (the API key's id). */
export interface PermissionAnswer {
  decision: "allow" | "deny";
  /** With deny: what the agent is told. */
  message?: string;
  /** With allow: the tool's input, changed. */
  updatedInput?: Record<string, unknown>;
  /** With allow: apply Claude Code's suggested rule, so it asks no more. */
  remember?: boolean;
}

/**
 * What `onPermission` decides: `true`/`"allow"`, `false`/`"deny"`, `"always"` (allow, and remember), a full
 * `PermissionAnswer`, or `null`/`undefined`: no answer here (another client, or a person, answers).
 */
export type PermissionDecision = PermissionAnswer | boolean | "allow" | "deny" | "always" | null | undefined;

/** The reply to an answer: the request, the decision, and who answered (the API key's id). */
export interface PermissionReceipt {
  requestId: string;
  decision: "allow" | "deny";
  by: string;
}

/** Callbacks of a session; each is optional. */
export interface AgentCallbacks {
  /** Every journalled event, in seq order, each once — the replay first, then live ones. */
  onEvent?: (event: AgentEvent) => void;
  /** `error` events of the session (as `AgentError`), and failures of the stream itself (`ConnectionLost`…). */
  onError?: (error: CoveError) => void;
  /** The runner is gone: its exit code and the `exit` event. */
  onExit?: (exitCode: number, event: ExitEvent) => void;
  /** The replay of past events is over; what follows is live. Called once, on the first connection. */
  onScrollbackEnd?: (event: ScrollbackEndEvent) => void;
  /**
   * A tool the agent waits to be allowed or denied: each request still pending when the replay ends, then each
   * new one. What it returns (or resolves to) is sent as the answer; a refused answer goes to `onError`.
   */
  onPermission?: (request: PermissionRequest) => PermissionDecision | Promise<PermissionDecision>;
}

/** What a session may be configured with; each takes effect from the next turn. */
export interface AgentConfigureOptions {
  /** The model; default the CLI's. */
  model?: string;
  /** Replaces Claude Code's system prompt. */
  systemPrompt?: string;
  /** Tools the agent may use without asking. */
  allowedTools?: string[];
  /** Tools the agent may not use. */
  disallowedTools?: string[];
  /** Default `bypassPermissions`. */
  permissionMode?: PermissionMode;
  /** Model round-trips per turn, at least 1. */
  maxTurns?: number;
  /** The agent's working directory; default `/workspace`. */
  cwd?: string;
  /** MCP servers by name. */
  mcpServers?: Record<string, McpServerConfig>;
  /** Deny a permission request no client answered within this many seconds (default: wait). */
  permissionTimeoutS?: number | null;
}

/** Options of `sandbox.agent.start`. */
export interface AgentStartOptions extends AgentCallbacks, AgentConfigureOptions {
  /** The first prompt; without one the session waits, idle, for `sendPrompt`. */
  prompt?: string;
  /** A `claude_session_id` (from a `turn_complete` event) whose conversation this session continues. */
  resume?: string;
  /** With `resume`: branch the conversation instead of continuing it. */
  fork?: boolean;
}

/** Options of `sandbox.agent.attach`. */
export interface AgentAttachOptions extends AgentCallbacks {
  /** Replay only the events after this seq (default 0: all of them). */
  after?: number;
}

/** The reply to a prompt: which turn it will be, and how many prompts wait before it. */
export interface PromptReceipt {
  queued: number;
  turn: number;
}

/** The reply to an interrupt: whether a turn was running, and which. */
export interface InterruptReceipt {
  interrupted: boolean;
  turn: number | null;
}

interface TurnWaiter {
  target: number;
  resolve: (event: TurnCompleteEvent | null) => void;
  reject: (error: CoveError) => void;
}

type Wire = Record<string, unknown>;

function configToWire(options: AgentConfigureOptions): Wire {
  const wire: Wire = {
    model: options.model,
    system_prompt: options.systemPrompt,
    allowed_tools: options.allowedTools,
    disallowed_tools: options.disallowedTools,
    permission_mode: options.permissionMode,
    max_turns: options.maxTurns,
    cwd: options.cwd,
    mcp_servers: options.mcpServers,
    permission_timeout_s: options.permissionTimeoutS,
  };
  for (const key of Object.keys(wire)) if (wire[key] === undefined) delete wire[key];
  return wire;
}

function permissionRequestOf(event: PermissionRequestedEvent): PermissionRequest | undefined {
  const { request_id: requestId, tool_name: toolName, input } = event as unknown as Wire;
  if (typeof requestId !== "string" || typeof toolName !== "string" || typeof input !== "object" || !input) {
    return undefined; // events are the sandbox's word: a malformed one is nobody's request
  }
  const suggestions = Array.isArray(event.suggestions)
    ? event.suggestions.filter((s) => s && typeof s === "object")
    : [];
  const toolUseId = typeof event.tool_use_id === "string" ? event.tool_use_id : null;
  return { requestId, toolName, input: input as Record<string, unknown>, suggestions, toolUseId, event };
}

function answerOf(decision: PermissionDecision): PermissionAnswer | undefined {
  if (decision === null || decision === undefined) return undefined;
  if (decision === true || decision === "allow") return { decision: "allow" };
  if (decision === "always") return { decision: "allow", remember: true };
  if (decision === false || decision === "deny") return { decision: "deny" };
  if (typeof decision === "object" && (decision.decision === "allow" || decision.decision === "deny")) return decision;
  const expected = "expected a boolean, allow, deny, always or an answer";
  throw new CoveError(`onPermission returned ${JSON.stringify(decision)}; ${expected}`, { code: "callback_error" });
}

function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined); // callers may ignore it; the error also reaches onError or `done`
  return promise;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One agent session, live. Events reach `onEvent` (and the session emits each by its type, e.g.
 * `session.on("interrupted", ...)`, as well as `"event"` for all); `await session.done` waits for the
 * current turn.
 *
 * @example
 * const session = await sandbox.agent.start({ prompt: "Write hello.py", onEvent: (e) => console.log(e.type) });
 * const turn = await session.done;           // the turn_complete event
 * session.sendPrompt("Now run it");
 * await session.done;                         // the second turn
 * await session.kill();
 */
export class AgentSession extends EventEmitter {
  /** The Cove session id (`ses_…`). */
  readonly sessionId: string;
  /** The sandbox the session runs in. */
  readonly sandboxId: string;
  /** The session as the server last reported it (refreshed by `refresh`, `configure`, `kill`). */
  info: AgentSessionInfo;
  /** The Claude conversation id, once known (`ready`, `turn_complete`): pass it as `resume` later. */
  claudeSessionId: string | null;
  /** The seq of the last event delivered. */
  lastSeq: number;
  /** The runner's exit code, once it has exited. */
  exitCode: number | null = null;

  private readonly path: string;
  private channel: Channel | undefined;
  private readonly acks = new Map<number, { resolve: (frame: Frame) => void; reject: (error: Error) => void }>();
  private nextCommandId = 1;
  private processing: Promise<void> = Promise.resolve();
  private commands: Promise<unknown> = Promise.resolve();
  private readonly promptTurns = new Set<Promise<number>>();
  private targetTurn = 0;
  private completedTurn = 0;
  private lastTurnComplete: TurnCompleteEvent | null = null;
  private waiters: TurnWaiter[] = [];
  private exited = false;
  private closed = false;
  private failure: CoveError | undefined;
  private lastErrorEvent: { code: string; message: string } | undefined;
  private scrollbackSeen = false;
  private connectWaiter: { resolve: () => void; reject: (error: CoveError) => void } | undefined;
  private exitWaiters: (() => void)[] = [];
  private readonly pending = new Map<string, PermissionRequest>();
  private readonly asked = new Set<string>();

  /** @internal Use `sandbox.agent.start` or `sandbox.agent.attach`. */
  constructor(
    private readonly client: CoveClient,
    info: AgentSessionInfo,
    private readonly callbacks: AgentCallbacks,
    after = 0,
  ) {
    super();
    this.info = info;
    this.sessionId = info.sessionId;
    this.sandboxId = info.sandboxId;
    this.claudeSessionId = info.claudeSessionId;
    this.lastSeq = after;
    this.path = `/v1/sandboxes/${info.sandboxId}/agent/${info.sessionId}`;
  }

  /** @internal Open the event stream; resolves once the replay is over. */
  async connect(): Promise<void> {
    const ready = handled(new Promise<void>((resolve, reject) => (this.connectWaiter = { resolve, reject })));
    await this.open();
    await ready;
  }

  /** @internal The turn `done` waits for at least, e.g. 1 when the session was started with a prompt. */
  expectTurn(turn: number): void {
    this.targetTurn = Math.max(this.targetTurn, turn);
  }

  // ---- the event stream ----

  private async open(): Promise<void> {
    // batch: a long replay arrives as a few hundred frames rather than one per event.
    const channel = await this.client.websocket(`${this.path}/ws`, { after: this.lastSeq, batch: 500 });
    if (this.closed) return channel.close();
    this.channel = channel;
    channel.listen(
      (frame) => this.serially(() => this.receive(frame)),
      (code, reason) => this.serially(() => this.lost(channel, code, reason)),
    );
  }

  /** Frames are handled one at a time, in order, even when filling a gap needs a REST call. */
  private serially(step: () => Promise<void> | void): void {
    this.processing = this.processing.then(step).catch((error: unknown) => {
      this.fail(error instanceof CoveError ? error : new CoveError(String(error), { cause: error }));
    });
  }

  private async receive(frame: Frame): Promise<void> {
    if (this.closed) return;
    if (frame.type === "scrollback_end") {
      this.attempts = 0;
      const event = frame as unknown as ScrollbackEndEvent;
      for (const request of [...this.pending.values()]) this.ask(request);
      if (!this.scrollbackSeen) {
        this.scrollbackSeen = true;
        this.call(() => this.callbacks.onScrollbackEnd?.(event));
        this.emit("scrollback_end", event);
      }
      const waiter = this.connectWaiter;
      this.connectWaiter = undefined;
      waiter?.resolve();
      return;
    }
    if (frame.type === "ack") {
      const waiter = this.acks.get(frame.id as number);
      this.acks.delete(frame.id as number);
      waiter?.resolve(frame);
      return;
    }
    if (typeof frame.seq !== "number") {
      if (frame.type === "error") {
        this.fail(errorFrom(0, String(frame.code ?? "error"), String(frame.message ?? "stream refused")));
      }
      return;
    }
    const event = frame as unknown as AgentEvent;
    if (event.seq <= this.lastSeq) return; // already delivered (a replay after reconnecting)
    if (event.seq > this.lastSeq + 1) await this.fillGap(event.seq);
    this.deliver(event);
  }

  /** Fetch the events between the last one delivered and `seq` from the REST log. */
  private async fillGap(seq: number): Promise<void> {
    while (this.lastSeq + 1 < seq) {
      const reply = await this.client.request<{ events: AgentEvent[] }>("GET", `${this.path}/events`, {
        query: { after: this.lastSeq, limit: Math.min(1000, seq - this.lastSeq - 1) },
      });
      const missing = reply.events.filter((e) => e.seq > this.lastSeq && e.seq < seq);
      if (!missing.length) throw new ConnectionLost(`events ${this.lastSeq + 1}..${seq - 1} are missing`, { code: "event_gap" });
      for (const event of missing) this.deliver(event);
    }
  }

  private deliver(event: AgentEvent): void {
    this.lastSeq = event.seq;
    switch (event.type) {
      case "ready":
        this.claudeSessionId = event.claude_session_id;
        break;
      case "turn_started":
        this.expectTurn(event.turn);
        break;
      case "turn_complete":
        if (event.claude_session_id) this.claudeSessionId = event.claude_session_id;
        break;
      case "exit":
        this.exited = true;
        this.exitCode = event.exit_code;
        this.pending.clear();
        break;
      case "permission_requested": {
        const request = permissionRequestOf(event);
        if (request) {
          this.pending.set(request.requestId, request);
          if (this.scrollbackSeen) this.ask(request);
        }
        break;
      }
      case "permission_resolved":
        this.pending.delete(String(event.request_id));
        break;
    }
    this.call(() => this.callbacks.onEvent?.(event));
    this.emit("event", event);
    if (event.type !== "error" || this.listenerCount("error") > 0) this.emit(event.type, event);
    if (event.type === "error") {
      this.lastErrorEvent = event;
      this.call(() => this.callbacks.onError?.(new AgentError(event)));
    }
    if (event.type === "turn_complete") {
      this.completedTurn = Math.max(this.completedTurn, event.turn);
      this.lastTurnComplete = event;
      this.settleWaiters();
    }
    if (event.type === "exit") {
      this.call(() => this.callbacks.onExit?.(event.exit_code, event));
      this.settleWaiters();
      for (const wake of this.exitWaiters.splice(0)) wake();
    }
  }

  /** Run a user callback; what it throws goes to onError (or, lacking one, is rethrown on its own). */
  private call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      const onError = this.callbacks.onError;
      if (onError && !(error instanceof CoveError && error.code === "callback_error")) {
        const wrapped = new CoveError(`a session callback threw: ${String(error)}`, { code: "callback_error", cause: error });
        try {
          onError(wrapped);
          return;
        } catch {
          // fall through: rethrow the original
        }
      }
      setImmediate(() => {
        throw error;
      });
    }
  }

  /** Hand a pending request to `onPermission` (once), and send what it decides. */
  private ask(request: PermissionRequest): void {
    const onPermission = this.callbacks.onPermission;
    if (!onPermission || this.asked.has(request.requestId)) return;
    this.asked.add(request.requestId);
    void (async () => {
      try {
        const answer = answerOf(await onPermission(request));
        if (answer && this.pending.has(request.requestId)) await this.answer(request.requestId, answer);
      } catch (error) {
        if (error instanceof AlreadyResolved) return; // another client, the timeout or an interrupt decided first
        const failure =
          error instanceof CoveError
            ? error
            : new CoveError(`onPermission failed: ${String(error)}`, { code: "callback_error", cause: error });
        this.call(() => this.callbacks.onError?.(failure));
      }
    })();
  }

  private attempts = 0;

  private async lost(channel: Channel, code: number, reason: string): Promise<void> {
    if (channel !== this.channel) return;
    // Commands sent on that socket may or may not have been carried out: say so rather than guess.
    for (const waiter of this.acks.values()) {
      const error = new ConnectionLost("the connection closed before the server answered");
      waiter.reject(error);
    }
    this.acks.clear();
    if (this.closed || this.exited || this.failure) return;
    const refused = closeError(code, reason);
    if (refused) return this.fail(refused);
    while (!this.closed && !this.exited) {
      this.attempts += 1;
      if (this.attempts > RECONNECT_ATTEMPTS) {
        return this.fail(
          new ConnectionLost(`lost the event stream of session ${this.sessionId} and could not resume`),
        );
      }
      await sleep(Math.min(100 * 2 ** (this.attempts - 1), 3000));
      try {
        await this.open(); // resumes from lastSeq: the server replays what we missed
        return;
      } catch (error) {
        if (error instanceof CoveError && !(error instanceof ConnectionLost)) return this.fail(error);
      }
    }
  }

  /** Why the session ended, as its last `error` event says (a bad cwd, a failed resume...), if it said. */
  private lastError(): string {
    const error = this.lastErrorEvent;
    return error ? ` (${error.code}: ${error.message})` : "";
  }

  private fail(error: CoveError): void {
    if (this.failure || this.closed) return;
    this.failure = error;
    this.channel?.close();
    const waiter = this.connectWaiter;
    this.connectWaiter = undefined;
    waiter?.reject(error);
    this.call(() => this.callbacks.onError?.(error));
    this.settleWaiters();
    for (const wake of this.exitWaiters.splice(0)) wake();
  }

  // ---- turns ----

  private settleWaiters(): void {
    this.waiters = this.waiters.filter((waiter) => !this.settle(waiter));
  }

  /** Settle a waiter if its turn is decided; true when it was. */
  private settle(waiter: TurnWaiter): boolean {
    if (waiter.target <= this.completedTurn) {
      waiter.resolve(this.lastTurnComplete);
    } else if (this.failure) {
      waiter.reject(this.failure);
    } else if (this.exited) {
      waiter.reject(
        new SessionExited(
          `session ${this.sessionId} exited (code ${this.exitCode}) before turn ${waiter.target} completed${this.lastError()}`,
        ),
      );
    } else if (this.closed) {
      waiter.reject(new CoveError(`session ${this.sessionId} was closed before turn ${waiter.target} completed`, { code: "closed" }));
    } else {
      return false;
    }
    return true;
  }

  /**
   * Resolves with the `turn_complete` event when the current turn is over — the latest turn this client
   * prompted or saw start (`null` if there never was one). Read it again after `sendPrompt` to wait for that
   * new turn. Rejects with `SessionExited` if the runner exits first.
   */
  get done(): Promise<TurnCompleteEvent | null> {
    const prompts = [...this.promptTurns];
    const known = this.targetTurn;
    return handled(
      (async () => {
        let target = known;
        for (const turn of prompts) target = Math.max(target, await turn);
        return new Promise<TurnCompleteEvent | null>((resolve, reject) => {
          const waiter = { target, resolve, reject };
          if (!this.settle(waiter)) this.waiters.push(waiter);
        });
      })(),
    );
  }

  // ---- commands ----

  /** Commands run one after the other, in the order they were called. */
  private command<T>(run: () => Promise<T>): Promise<T> {
    const result = this.commands.then(run, run);
    this.commands = result.catch(() => undefined);
    return result;
  }

  /**
   * Send a follow-up prompt; it runs when the current turn is over. No need to await it before reading
   * `done`, which waits for this prompt's turn. A refused prompt is also reported to `onError`.
   */
  sendPrompt(text: string): Promise<PromptReceipt> {
    const receipt = this.command(() => this.send<PromptReceipt>("prompt", { text }));
    const turn = receipt.then((r) => {
      this.expectTurn(r.turn);
      return r.turn;
    });
    this.promptTurns.add(turn);
    turn.then(
      () => this.promptTurns.delete(turn),
      (error: unknown) => {
        this.promptTurns.delete(turn);
        if (error instanceof CoveError) this.call(() => this.callbacks.onError?.(error));
      },
    );
    handled(turn);
    return handled(receipt);
  }

  /**
   * A command's result: sent over the connected event stream (a frame each way instead of an HTTP request),
   * or as `POST …/{path}` (the op, unless given) when no stream is open; `addressed` (a request id) goes in the
   * frame, the path holds it. Refusals are the errors REST gives (the ack carries the same status).
   */
  private send<T>(op: string, fields: Wire = {}, path = op, addressed: Wire = {}): Promise<T> {
    const body = Object.keys(fields).length > 0 ? { json: fields } : {};
    return (
      this.overSocket<T>({ ...addressed, ...fields, op }) ??
      this.client.request<T>("POST", `${this.path}/${path}`, body)
    );
  }

  /** `undefined` when no stream is open or the frame could not be sent (then nothing reached the server). */
  private overSocket<T>(command: Record<string, unknown>): Promise<T> | undefined {
    const channel = this.channel;
    if (!channel?.open) return undefined;
    const id = this.nextCommandId++;
    const ack = new Promise<Frame>((resolve, reject) => this.acks.set(id, { resolve, reject }));
    try {
      channel.send({ ...command, id });
    } catch {
      this.acks.delete(id);
      return undefined;
    }
    return ack.then((frame) => {
      if (frame.ok) return frame.result as T;
      const error = (frame.error ?? {}) as { code?: string; message?: string; status?: number };
      const message = error.message ?? `${String(command.op)} refused`;
      throw errorFrom(error.status ?? 400, error.code ?? "error", message);
    });
  }

  /** The tools the agent is waiting to be allowed or denied, oldest first. */
  get pendingPermissions(): PermissionRequest[] {
    return [...this.pending.values()];
  }

  /**
   * Allow a pending tool use (`remember`: apply Claude Code's suggested rule, so it is not asked again).
   * Rejects with `AlreadyResolved` when it was decided before.
   *
   * @example
   * for (const request of session.pendingPermissions) await session.approve(request.requestId);
   */
  approve(
    requestId: string,
    options: { updatedInput?: Record<string, unknown>; remember?: boolean } = {},
  ): Promise<PermissionReceipt> {
    return this.answer(requestId, { decision: "allow", ...options });
  }

  /** Deny a pending tool use; `message` is what the agent is told. */
  deny(requestId: string, options: { message?: string } = {}): Promise<PermissionReceipt> {
    return this.answer(requestId, { decision: "deny", ...options });
  }

  private answer(requestId: string, answer: PermissionAnswer): Promise<PermissionReceipt> {
    const fields: Wire = { decision: answer.decision };
    if (answer.message !== undefined) fields.message = answer.message;
    if (answer.updatedInput !== undefined) fields.updated_input = answer.updatedInput;
    if (answer.remember !== undefined) fields.remember = answer.remember;
    return this.command(async () => {
      const path = `permissions/${encodeURIComponent(requestId)}`;
      const reply = await this.send<Wire>("permission", fields, path, { request_id: requestId });
      const decision = reply.decision as PermissionReceipt["decision"];
      return { requestId: String(reply.request_id), decision, by: String(reply.by) };
    });
  }

  /** Abort the running turn; the session emits an `interrupted` event, then `turn_complete`. */
  interrupt(): Promise<InterruptReceipt> {
    return this.command(() => this.send<InterruptReceipt>("interrupt"));
  }

  /**
   * Change the configuration from the next turn on; the conversation is kept.
   *
   * @example
   * await session.configure({ model: "claude-haiku-4-5", maxTurns: 3 });
   */
  configure(options: AgentConfigureOptions): Promise<AgentSessionInfo> {
    return this.command(async () => {
      this.info = agentSessionInfoFrom(await this.send<Wire>("configure", configToWire(options)));
      return this.info;
    });
  }

  /** Stop the runner (default SIGTERM); resolves once its `exit` event has arrived (or after 15 s). */
  kill(signal?: string | number): Promise<AgentSessionInfo> {
    return this.command(async () => {
      const body = signal === undefined ? {} : { signal };
      this.info = agentSessionInfoFrom(await this.client.request<Wire>("POST", `${this.path}/kill`, { json: body }));
      if (!this.exited && !this.closed && !this.failure && this.channel) {
        await Promise.race([new Promise<void>((resolve) => this.exitWaiters.push(resolve)), sleep(KILL_WAIT_MS)]);
      }
      return this.refresh();
    });
  }

  /**
   * A token for this session alone — for a page that shows one session to one user: `read` (its events),
   * `prompt` (prompt, interrupt, configure), `approve` (answer its permission requests).
   *
   * @example
   * const watcher = await session.createToken({ scopes: ["read", "approve"], ttlS: 3600 });
   */
  async createToken(options: TokenOptions): Promise<TokenInfo & { token: string }> {
    return mintToken(this.client, this.sandboxId, this.sessionId, options);
  }

  /** The session as the server reports it now. */
  async refresh(): Promise<AgentSessionInfo> {
    this.info = agentSessionInfoFrom(await this.client.request<Wire>("GET", this.path));
    return this.info;
  }

  /**
   * A turn's unified diff a page at a time (whole lines, `limit` bytes at most; the server's default is 256 KiB),
   * for diffs too big to hold; `turn` defaults to the last turn that completed.
   */
  async *diffPages(turn?: number, options: { limit?: number } = {}): AsyncGenerator<TurnDiff> {
    const number = turn ?? (await this.refresh()).turns;
    if (number < 1) throw new TurnNotFound(`no turn of session ${this.sessionId} has completed yet`, { code: "turn_not_found", status: 404 });
    let cursor: string | undefined;
    for (;;) {
      const page = await this.client.request<Wire>("GET", `${this.path}/turns/${number}/diff`, {
        query: { cursor, limit: options.limit },
      });
      const shown = turnDiffFrom(page);
      yield shown;
      if (shown.nextCursor === null) return;
      cursor = shown.nextCursor;
    }
  }

  /**
   * What a turn changed under /workspace (default: the last turn that completed), as `git diff` writes it, every
   * page joined: `files` is the turn's `files_changed` in full, `diff` the whole patch.
   *
   * @example
   * const { files, diff } = await session.diff();
   * for (const f of files) console.log(f.change, f.path, `+${f.additions} -${f.deletions}`);
   */
  async diff(turn?: number): Promise<TurnDiff> {
    const pages: TurnDiff[] = [];
    for await (const page of this.diffPages(turn)) pages.push(page);
    const files = pages.flatMap((page) => page.files);
    // A file whose diff goes on over a page break is on both pages.
    const unique = files.filter((file, index) => index === 0 || JSON.stringify(file) !== JSON.stringify(files[index - 1]));
    return { turn: pages[0]!.turn, files: unique, diff: pages.map((page) => page.diff).join(""), nextCursor: null, totalFiles: pages[0]!.totalFiles };
  }

  /** Stop listening; the session keeps running in the sandbox (`sandbox.agent.attach` finds it again). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel?.close();
    const waiter = this.connectWaiter;
    this.connectWaiter = undefined;
    waiter?.reject(new CoveError("session closed", { code: "closed" }));
    this.settleWaiters();
    for (const wake of this.exitWaiters.splice(0)) wake();
  }

  /** @internal Drop the socket as a network failure would; the session reconnects from its last seq. */
  dropConnection(): void {
    this.channel?.terminate();
  }
}

/** Agent sessions of one sandbox: `sandbox.agent`. */
export class Agent {
  private readonly path: string;

  /** @internal */
  constructor(
    private readonly client: CoveClient,
    sandboxId: string,
  ) {
    this.path = `/v1/sandboxes/${sandboxId}/agent`;
  }

  /**
   * Start Claude Code in the sandbox. Resolves once the session exists and its event stream is connected.
   * Throws `ResumeNotFound` when `resume` names no conversation in this sandbox.
   *
   * @example
   * let resumeId: string | null = null;
   * const session = await sandbox.agent.start({
   *   prompt: "Fix the failing test",
   *   onEvent: (event) => {
   *     if (event.type === "turn_complete") resumeId = event.claude_session_id;
   *   },
   * });
   * await session.done;
   */
  async start(options: AgentStartOptions = {}): Promise<AgentSession> {
    const body: Wire = { ...configToWire(options) };
    if (options.prompt !== undefined) body.prompt = options.prompt;
    if (options.resume !== undefined) body.resume = options.resume;
    if (options.fork !== undefined) body.fork = options.fork;
    const info = agentSessionInfoFrom(await this.client.request<Wire>("POST", this.path, { json: body }));
    const session = new AgentSession(this.client, info, options);
    if (options.prompt !== undefined) session.expectTurn(1);
    await session.connect();
    return session;
  }

  /**
   * Reconnect to a session — running or not — and replay the events the caller missed (all of them, or
   * those after `options.after`) before live ones. Resolves once the replay is delivered.
   */
  async attach(sessionId: string, options: AgentAttachOptions = {}): Promise<AgentSession> {
    const info = await this.get(sessionId);
    const session = new AgentSession(this.client, info, options, options.after ?? 0);
    if (info.running) session.expectTurn(info.queued > 0 ? info.turns + info.queued : 0);
    await session.connect();
    return session;
  }

  /** The sessions of this sandbox, each with `sessionId`, `running`, `status`, `claudeSessionId`. */
  async list(): Promise<AgentSessionInfo[]> {
    const reply = await this.client.request<{ sessions: Wire[] }>("GET", this.path);
    return reply.sessions.map(agentSessionInfoFrom);
  }

  /** One session, as the server reports it. */
  async get(sessionId: string): Promise<AgentSessionInfo> {
    return agentSessionInfoFrom(await this.client.request<Wire>("GET", `${this.path}/${sessionId}`));
  }

  /**
   * Which model upstream the server's agents talk to: `upstream === "simulator"` means Cove's model simulator,
   * whose token counts and costs are simulated.
   */
  async modelInfo(): Promise<ModelInfo> {
    return modelInfoFrom(await this.client.request<Wire>("GET", "/v1/model"));
  }
}

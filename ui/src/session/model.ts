/**
 * A session's events, turned into what the page shows: a list of items (a prompt, a block of text or thinking, a
 * tool call with its result, a permission request, the end of a turn, a notice) and the session's state.
 *
 * Events arrive in seq order, each once (see `stream.ts`); `apply` takes them in batches and changes the items in
 * place — streamed text grows its item, a tool's result joins its card, an answer joins its request — bumping each
 * changed item's `rev` and the model's `revision`, so a view redraws only what changed, once per frame.
 *
 * Events are the sandbox's to write (docs/security.md): any field may be missing or of another type. Nothing
 * here trusts one; a malformed event becomes a notice, never an exception, and text stays text.
 */

import type { AgentEvent, UsageTotals } from "@cove/sdk/events.js";

interface Base {
  /** Stable across the item's changes: what the list keys rows by. */
  key: string;
  /** The seq of the event that made it. */
  seq: number;
  /** Bumped on every change to the item. */
  rev: number;
}

export interface PromptItem extends Base {
  kind: "prompt";
  turn: number;
  text: string;
}

/** Assistant text or thinking: grows with its deltas while `streaming`, then holds the final block's text. */
export interface TextItem extends Base {
  kind: "text" | "thinking";
  messageId: string;
  text: string;
  streaming: boolean;
}

export interface ToolResult {
  text: string;
  isError: boolean;
}

export interface ToolItem extends Base {
  kind: "tool";
  toolUseId: string;
  name: string;
  input: unknown;
  result: ToolResult | null;
  /** The permission request about this call, if it needed one. */
  permission: PermissionItem | null;
}

export interface Resolution {
  decision: "allow" | "deny";
  by: string;
  reason: string;
  message: string | null;
}

export interface PermissionItem extends Base {
  kind: "permission";
  requestId: string;
  toolName: string;
  input: unknown;
  /** Claude Code's own words for the request, when it gives them. */
  description: string | null;
  resolution: Resolution | null;
}

/** A file a turn changed (`files_changed` of turn_complete). */
export interface FileChange {
  path: string;
  change: string;
  additions: number | null;
  deletions: number | null;
}

export interface TurnItem extends Base {
  kind: "turn";
  turn: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  interrupted: boolean;
  isError: boolean;
  error: string | null;
  /** null when the server does not report what a turn changed. */
  filesChanged: FileChange[] | null;
}

export interface NoticeItem extends Base {
  kind: "notice";
  tone: "info" | "warning" | "error" | "quiet";
  text: string;
}

export type Item = PromptItem | TextItem | ToolItem | PermissionItem | TurnItem | NoticeItem;

export type SessionStatus = "starting" | "idle" | "running" | "exited" | "failed";

export interface SessionState {
  status: SessionStatus;
  /** The turn running, or the last one that ran (0: none yet). */
  turn: number;
  model: string | null;
  permissionMode: string | null;
  totalUsage: UsageTotals | null;
  totalCostUsd: number;
  exitCode: number | null;
  /** Every model the session named so far: what a model switch offers first. */
  models: string[];
  /** The model the latest reply came from (the CLI's default when `model` is null). */
  activeModel: string | null;
}

type Fields = Record<string, unknown>;

const str = (value: unknown, fallback = ""): string => (typeof value === "string" ? value : fallback);
const num = (value: unknown, fallback = 0): number =>
  typeof value === "number" && Number.isFinite(value) ? value : fallback;
const obj = (value: unknown): Fields => (value && typeof value === "object" && !Array.isArray(value) ? (value as Fields) : {});
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** The text of a tool result's `content`: a string, or text blocks (other blocks are named, not shown). */
function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  return list(content)
    .map((part) => {
      const block = obj(part);
      return block.type === "text" ? str(block.text) : `[${str(block.type, "content")}]`;
    })
    .join("\n");
}

function usageTotals(value: unknown): UsageTotals | null {
  const usage = obj(value);
  if (typeof usage.input_tokens !== "number") return null;
  return {
    input_tokens: num(usage.input_tokens),
    output_tokens: num(usage.output_tokens),
    cache_creation_input_tokens: num(usage.cache_creation_input_tokens),
    cache_read_input_tokens: num(usage.cache_read_input_tokens),
  };
}

function filesChanged(value: unknown): FileChange[] | null {
  if (!Array.isArray(value)) return null;
  return value.map((entry) => {
    const file = obj(entry);
    return {
      path: str(file.path, "?"),
      change: str(file.change, "modified"),
      additions: typeof file.additions === "number" ? file.additions : null,
      deletions: typeof file.deletions === "number" ? file.deletions : null,
    };
  });
}

export class SessionModel {
  readonly items: Item[] = [];
  /** Bumped whenever any item or the state changes. */
  revision = 0;
  /** The seq of the last event applied: where a reconnect resumes. */
  lastSeq = 0;
  /** Events applied so far, each seq once. */
  eventCount = 0;
  state: SessionState = {
    status: "starting",
    turn: 0,
    model: null,
    permissionMode: null,
    totalUsage: null,
    totalCostUsd: 0,
    exitCode: null,
    models: [],
    activeModel: null,
  };
  /** Permission requests not decided yet, oldest first. */
  readonly pending = new Map<string, PermissionItem>();

  private readonly streaming = new Map<string, TextItem[]>(); // message id -> its blocks still streaming
  private readonly tools = new Map<string, ToolItem>();
  private readonly requests = new Map<string, PermissionItem>();
  private lastInit = "";

  /** Take events in seq order; those at or before `lastSeq` were applied already and are skipped. */
  apply(events: readonly AgentEvent[]): void {
    let changed = false;
    for (const event of events) {
      const seq = num((event as Fields).seq, -1);
      if (seq <= this.lastSeq) continue;
      this.lastSeq = seq;
      this.eventCount += 1;
      changed = true;
      try {
        this.one(event as unknown as Fields, seq);
      } catch {
        this.notice(seq, "error", `event ${seq} could not be shown`);
      }
    }
    if (changed) this.revision += 1;
  }

  private push<T extends Item>(item: T): T {
    this.items.push(item);
    return item;
  }

  private touch(item: Item): void {
    item.rev += 1;
  }

  private notice(seq: number, tone: NoticeItem["tone"], text: string): void {
    this.push({ kind: "notice", key: `n${seq}`, seq, rev: 0, tone, text });
  }

  private seen(model: unknown): void {
    if (typeof model === "string" && model && !this.state.models.includes(model)) this.state.models.push(model);
  }

  private answered(model: unknown): void {
    this.seen(model);
    if (typeof model === "string" && model) this.state.activeModel = model;
  }

  private configure(config: unknown): void {
    const fields = obj(config);
    if ("model" in fields) this.state.model = typeof fields.model === "string" ? fields.model : null;
    this.seen(fields.model);
    if (typeof fields.permission_mode === "string") this.state.permissionMode = fields.permission_mode;
  }

  private one(event: Fields, seq: number): void {
    const type = str(event.type);
    switch (type) {
      case "ready":
        this.configure(event.config);
        if (this.state.status === "starting") this.state.status = "idle";
        this.notice(seq, "quiet", ["Claude Code", str(event.claude_code_version), "ready"].filter(Boolean).join(" "));
        return;
      case "turn_started": {
        const turn = num(event.turn);
        this.state.status = "running";
        this.state.turn = turn;
        this.push({ kind: "prompt", key: `p${seq}`, seq, rev: 0, turn, text: str(event.prompt) });
        return;
      }
      case "text_delta":
      case "thinking_delta":
        return this.delta(event, seq, type === "text_delta" ? "text" : "thinking");
      case "assistant":
        return this.assistant(event, seq);
      case "user":
        return this.user(event, seq);
      case "permission_requested":
        return this.requested(event, seq);
      case "permission_resolved":
        return this.resolved(event, seq);
      case "turn_complete":
        return this.turnComplete(event, seq);
      case "result":
        if (event.is_error === true) this.notice(seq, "error", str(event.result, "the turn failed"));
        return;
      case "system":
        if (event.subtype === "init") {
          // Claude Code says init at every turn; it is news only when the model or directory changed.
          const data = obj(event.data);
          const line = `Claude Code runs ${str(data.model, "?")} in ${str(data.cwd, "?")}`;
          this.answered(data.model);
          if (line !== this.lastInit) this.notice(seq, "quiet", line);
          this.lastInit = line;
        } else if (event.subtype !== "status") {
          this.notice(seq, "quiet", `System: ${str(event.subtype, "message")}`);
        }
        return;
      case "interrupted":
        this.notice(seq, "warning", `Interrupting turn ${num(event.turn)}…`);
        return;
      case "configured": {
        this.configure(event.config);
        const changes = Object.entries(obj(event.changes)).map(([name, value]) => `${name} = ${JSON.stringify(value)}`);
        this.notice(seq, "info", `Configured: ${changes.join(", ") || "no change"}`);
        return;
      }
      case "error":
        this.notice(seq, "error", `${str(event.code, "error")}: ${str(event.message)}`);
        return;
      case "stderr":
        this.notice(seq, "quiet", str(event.text));
        return;
      case "exit":
        this.state.status = "exited";
        this.state.exitCode = num(event.exit_code);
        for (const request of this.pending.values()) this.touch(request);
        this.pending.clear();
        this.closeStreaming();
        this.notice(seq, "info", `Session exited (code ${num(event.exit_code)})`);
        return;
      default:
        this.notice(seq, "quiet", `Event: ${type || "unknown"}`);
    }
  }

  private delta(event: Fields, seq: number, kind: TextItem["kind"]): void {
    const messageId = str(event.message_id);
    const open = this.streaming.get(messageId) ?? [];
    // One item per content block: a delta for a block index not seen before starts a new item.
    const key = `${kind}:${messageId}:${num(event.index)}`;
    let item = open.find((candidate) => candidate.key === key);
    if (!item) {
      item = this.push({ kind, key, seq, rev: 0, messageId, text: "", streaming: true });
      open.push(item);
      this.streaming.set(messageId, open);
    }
    item.text += str(event.text);
    this.touch(item);
  }

  private assistant(event: Fields, seq: number): void {
    const messageId = str(event.message_id);
    this.answered(event.model);
    list(event.content).forEach((part, index) => {
      const block = obj(part);
      if (block.type === "text" || block.type === "thinking") {
        const kind = block.type;
        const text = str(kind === "text" ? block.text : block.thinking);
        // The block's deltas came first: the oldest block of this kind still streaming is this one.
        const open = this.streaming.get(messageId) ?? [];
        const item = open.find((candidate) => candidate.kind === kind);
        if (item) {
          open.splice(open.indexOf(item), 1);
          item.text = text;
          item.streaming = false;
          this.touch(item);
        } else {
          this.push({ kind, key: `${kind}:${seq}:${index}`, seq, rev: 0, messageId, text, streaming: false });
        }
      } else if (block.type === "tool_use" || block.type === "server_tool_use") {
        const toolUseId = str(block.id, `${seq}:${index}`);
        const item: ToolItem = {
          kind: "tool",
          key: `t${seq}:${index}`,
          seq,
          rev: 0,
          toolUseId,
          name: str(block.name, "tool"),
          input: block.input ?? {},
          result: null,
          permission: null,
        };
        this.tools.set(toolUseId, this.push(item));
      }
    });
    if (typeof event.error === "string" && event.error) this.notice(seq, "error", `Model error: ${event.error}`);
  }

  private user(event: Fields, seq: number): void {
    if (typeof event.content === "string") {
      if (event.content) this.notice(seq, "quiet", event.content);
      return;
    }
    for (const part of list(event.content)) {
      const block = obj(part);
      if (block.type === "tool_result" || block.type === "server_tool_result") {
        const tool = this.tools.get(str(block.tool_use_id));
        const result = { text: resultText(block.content), isError: block.is_error === true };
        if (tool) {
          tool.result = result;
          this.touch(tool);
        } else {
          this.notice(seq, result.isError ? "error" : "quiet", result.text);
        }
      } else if (block.type === "text" && str(block.text)) {
        this.notice(seq, "quiet", str(block.text));
      }
    }
  }

  private requested(event: Fields, seq: number): void {
    const requestId = str(event.request_id);
    if (!requestId || this.requests.has(requestId)) return;
    const item: PermissionItem = {
      kind: "permission",
      key: `r${seq}`,
      seq,
      rev: 0,
      requestId,
      toolName: str(event.tool_name, "tool"),
      input: event.input ?? {},
      description: str(event.title) || str(event.description) || null,
      resolution: null,
    };
    this.requests.set(requestId, item);
    if (this.state.status !== "exited") this.pending.set(requestId, item);
    // A request about a tool call shows on that call's card; one about no known call is a row of its own.
    const tool = this.tools.get(str(event.tool_use_id));
    if (tool) {
      tool.permission = item;
      this.touch(tool);
    } else {
      this.push(item);
    }
  }

  private resolved(event: Fields, seq: number): void {
    const item = this.requests.get(str(event.request_id));
    if (!item) {
      this.notice(seq, "quiet", `Permission ${str(event.request_id)} resolved`);
      return;
    }
    item.resolution = {
      decision: event.decision === "allow" ? "allow" : "deny",
      by: str(event.by, "?"),
      reason: str(event.reason, "answered"),
      message: typeof event.message === "string" ? event.message : null,
    };
    this.pending.delete(item.requestId);
    this.touch(item);
    for (const tool of this.tools.values()) if (tool.permission === item) this.touch(tool);
  }

  private turnComplete(event: Fields, seq: number): void {
    const usage = obj(event.usage);
    this.push<TurnItem>({
      kind: "turn",
      key: `c${seq}`,
      seq,
      rev: 0,
      turn: num(event.turn),
      costUsd: num(event.cost_usd),
      inputTokens: num(usage.input_tokens) + num(usage.cache_creation_input_tokens) + num(usage.cache_read_input_tokens),
      outputTokens: num(usage.output_tokens),
      interrupted: event.interrupted === true,
      isError: event.is_error === true,
      error: typeof event.error === "string" ? event.error : null,
      filesChanged: filesChanged(event.files_changed),
    });
    this.state.totalUsage = usageTotals(event.total_usage) ?? this.state.totalUsage;
    this.state.totalCostUsd = num(event.total_cost_usd, this.state.totalCostUsd);
    this.state.turn = Math.max(this.state.turn, num(event.turn));
    if (this.state.status === "running") this.state.status = "idle";
    this.closeStreaming();
  }

  /** Blocks whose final message never came (an interrupted turn, an exit) stop streaming where they are. */
  private closeStreaming(): void {
    for (const open of this.streaming.values()) {
      for (const item of open) {
        item.streaming = false;
        this.touch(item);
      }
    }
    this.streaming.clear();
  }
}

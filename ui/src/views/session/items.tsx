/**
 * How each item of a session reads: one component per kind. Everything an event carries is shown as text —
 * JSX puts strings into text nodes, never into HTML — since every event is the sandbox's to write.
 */

import type { VNode } from "preact";

import { Fold } from "../../components/Fold.js";
import { cost, count } from "../../lib/format.js";
import type { Item, NoticeItem, PermissionItem, PromptItem, TextItem, ToolItem, TurnItem } from "../../session/model.js";

/** Longer than this, a tool's input or result starts folded. */
const FOLD_LINES = 12;
const FOLD_CHARS = 1200;

function isLong(text: string): boolean {
  return text.length > FOLD_CHARS || text.split("\n", FOLD_LINES + 1).length > FOLD_LINES;
}

function lines(text: string): string {
  const n = text.split("\n").length;
  return n === 1 ? `${count(text.length)} characters` : `${count(n)} lines`;
}

/** A tool input as people read it: its JSON, pretty. */
export function inputText(input: unknown): string {
  try {
    return JSON.stringify(input, null, 2) ?? String(input);
  } catch {
    return String(input);
  }
}

/** The one line that says what a tool call is about: the command, the file, the pattern… */
export function toolTarget(input: unknown): string {
  const fields = input && typeof input === "object" ? (input as Record<string, unknown>) : {};
  for (const name of ["command", "file_path", "path", "pattern", "url", "query", "description"]) {
    const value = fields[name];
    if (typeof value === "string" && value) return value.split("\n", 1)[0]!;
  }
  return "";
}

function Prompt({ item }: { item: PromptItem }) {
  return (
    <div class="item prompt">
      <div class="who">You · turn {item.turn}</div>
      <div class="prose">{item.text}</div>
    </div>
  );
}

function Text({ item, session }: { item: TextItem; session: string }) {
  if (item.kind === "thinking") {
    const summary = item.streaming ? "Thinking…" : `Thinking (${lines(item.text)})`;
    return (
      <div class="item thinking">
        <Fold id={`${session}:${item.key}`} summary={summary}>
          <div class="prose">{item.text}</div>
        </Fold>
      </div>
    );
  }
  return (
    <div class={`item text${item.streaming ? " streaming" : ""}`} aria-busy={item.streaming}>
      <div class="prose">{item.text}</div>
    </div>
  );
}

function Block(props: { id: string; title: string; text: string; error?: boolean }) {
  const long = isLong(props.text);
  return (
    <Fold
      id={props.id}
      class={props.error ? "block error" : "block"}
      summary={long ? `${props.title} (${lines(props.text)})` : props.title}
      open={!long}
    >
      <pre>{props.text}</pre>
    </Fold>
  );
}

function permissionNote(item: PermissionItem): string {
  const resolution = item.resolution;
  if (!resolution) return "waiting for approval";
  const verb = resolution.decision === "allow" ? "allowed" : "denied";
  const how = resolution.reason === "answered" ? `by ${resolution.by}` : `(${resolution.reason})`;
  return `${verb} ${how}${resolution.message ? `: ${resolution.message}` : ""}`;
}

function Tool({ item, session }: { item: ToolItem; session: string }) {
  const state = item.result ? (item.result.isError ? "failed" : "done") : "running";
  return (
    <div class={`item tool ${state}`}>
      <div class="tool-head">
        <span class="tool-name">{item.name}</span>
        <code class="tool-target">{toolTarget(item.input)}</code>
        {item.permission ? <span class="tool-permission">{permissionNote(item.permission)}</span> : null}
      </div>
      <Block id={`${session}:${item.key}:in`} title="Input" text={inputText(item.input)} />
      {item.result ? (
        <Block id={`${session}:${item.key}:out`} title={item.result.isError ? "Error" : "Result"} text={item.result.text} error={item.result.isError} />
      ) : null}
    </div>
  );
}

function Permission({ item }: { item: PermissionItem }) {
  return (
    <div class={`item permission ${item.resolution ? item.resolution.decision : "pending"}`}>
      Permission for <strong>{item.toolName}</strong> {toolTarget(item.input)} — {permissionNote(item)}
    </div>
  );
}

function Turn({ item, onChanges }: { item: TurnItem; onChanges?: (turn: number) => void }) {
  const files = item.filesChanged;
  return (
    <div class={`item turn${item.isError ? " error" : ""}`}>
      <span>
        Turn {item.turn} {item.interrupted ? "interrupted" : item.isError ? "failed" : "done"}
      </span>
      <span>
        {count(item.inputTokens)} in · {count(item.outputTokens)} out · {cost(item.costUsd)}
      </span>
      {item.error ? <span>{item.error}</span> : null}
      {files && files.length ? (
        onChanges ? (
          <button type="button" class="link" onClick={() => onChanges(item.turn)}>
            {files.length === 1 ? "1 file changed" : `${files.length} files changed`}
          </button>
        ) : (
          <span>{files.length === 1 ? "1 file changed" : `${files.length} files changed`}</span>
        )
      ) : null}
    </div>
  );
}

function Notice({ item }: { item: NoticeItem }) {
  return <div class={`item notice ${item.tone}`}>{item.text}</div>;
}

export interface ItemContext {
  /** Namespaces fold states: item keys are unique within a session only. */
  session: string;
  /** Opens a turn's changes, where the server can show them. */
  onChanges?: (turn: number) => void;
}

export function renderItem(item: Item, context: ItemContext): VNode {
  switch (item.kind) {
    case "prompt":
      return <Prompt item={item} />;
    case "text":
    case "thinking":
      return <Text item={item} session={context.session} />;
    case "tool":
      return <Tool item={item} session={context.session} />;
    case "permission":
      return <Permission item={item} />;
    case "turn":
      return <Turn item={item} onChanges={context.onChanges} />;
    case "notice":
      return <Notice item={item} />;
  }
}

/** Heights to start from, before a row is measured (in pixels). */
export function estimateHeight(item: Item): number {
  switch (item.kind) {
    case "tool":
      return 120;
    case "text":
    case "prompt":
      return 24 + 20 * Math.min(40, Math.ceil(item.text.length / 90));
    default:
      return 30;
  }
}

/**
 * The session view: the live event stream drawn for people, the session's state and totals, approvals, the
 * prompt box, Interrupt and a model switch. What the credential may not do is not offered (a `read` token sees
 * the stream and nothing to press).
 */

import { useEffect, useMemo, useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { type Credentials, can } from "../../api/credentials.js";
import { Problem } from "../../components/Problem.js";
import { VirtualList } from "../../components/VirtualList.js";
import { useAction } from "../../lib/action.js";
import { cost, count } from "../../lib/format.js";
import { useObservable } from "../../lib/observable.js";
import { SessionController } from "../../session/controller.js";
import type { Item } from "../../session/model.js";
import type { Connection } from "../../session/stream.js";
import { Approvals } from "./Approvals.js";
import { estimateHeight, renderItem } from "./items.js";
import { PromptBox } from "./PromptBox.js";
import { TurnChanges } from "./TurnChanges.js";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "connecting…",
  replaying: "loading history…",
  live: "live",
  reconnecting: "reconnecting…",
  ended: "ended",
  failed: "disconnected",
};

/** Marks the moment the first events are on screen, for benchmarks/bench_inspector.py (and devtools). */
function markFirstRows(): void {
  performance.mark("cove:first-event");
}

function ModelSwitch({ controller }: { controller: SessionController }) {
  const state = controller.model.state;
  const [model, setModel] = useState(state.model ?? "");
  const [saved, setSaved] = useState(false);
  const action = useAction();
  useEffect(() => setModel(state.model ?? ""), [state.model]);
  return (
    <form
      class="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        setSaved(false);
        void action.run(() => controller.configure({ model: model.trim() || null })).then(setSaved);
      }}
    >
      <label>
        Model
        <input list="session-models" value={model} placeholder="default" onInput={(e) => setModel(e.currentTarget.value)} />
      </label>
      <datalist id="session-models">
        {state.models.map((name) => (
          <option key={name} value={name} />
        ))}
      </datalist>
      <button type="submit" disabled={action.busy}>
        Switch model
      </button>
      {saved ? <span class="muted">from the next turn</span> : null}
      <Problem error={action.error} />
    </form>
  );
}

function Interrupt({ controller }: { controller: SessionController }) {
  const action = useAction();
  const running = controller.model.state.status === "running";
  return (
    <>
      <button type="button" class="danger" disabled={!running || action.busy} onClick={() => action.run(() => controller.interrupt())}>
        Interrupt
      </button>
      <Problem error={action.error} />
    </>
  );
}

export function SessionView(props: { api: Api; credentials: Credentials; sandboxId: string; sessionId: string }) {
  const { api, credentials, sandboxId, sessionId } = props;
  const controller = useMemo(() => new SessionController(api, sandboxId, sessionId), [api, sandboxId, sessionId]);
  useEffect(() => {
    controller.open();
    return () => controller.close();
  }, [controller]);
  useObservable(controller);

  const [simulated, setSimulated] = useState(false);
  useEffect(() => {
    // Only a key may ask which upstream the server uses; a token's page just leaves costs unmarked.
    if (credentials.kind !== "key") return;
    api.get<{ upstream: string }>("/v1/model").then(
      (info) => setSimulated(info.upstream === "simulator"),
      () => undefined,
    );
  }, [api, credentials]);

  const { model } = controller;
  const state = model.state;
  const totals = state.totalUsage;
  const exited = state.status === "exited" || state.status === "failed";
  const [changesOf, setChangesOf] = useState<number | null>(null);
  const context = { session: sessionId, onChanges: setChangesOf };

  return (
    <div class="session">
      <header class="session-head">
        <h1>
          Session <code>{sessionId}</code>
        </h1>
        <div class="session-facts">
          <span class={`badge status-${state.status}`} aria-label={`Session state: ${state.status}`}>
            {state.status}
          </span>
          <span class={`badge connection-${controller.connection}`} aria-label={`Connection: ${CONNECTION_TEXT[controller.connection]}`}>
            {CONNECTION_TEXT[controller.connection]}
          </span>
          <span>turn {state.turn}</span>
          <span>{state.model ?? `${state.activeModel ?? "the"} (default model)`}</span>
          {totals ? (
            <span>
              {count(totals.input_tokens + totals.cache_creation_input_tokens + totals.cache_read_input_tokens)} in ·{" "}
              {count(totals.output_tokens)} out
            </span>
          ) : null}
          <span aria-label="Total cost">
            {cost(state.totalCostUsd)}
            {simulated ? " (simulated)" : ""}
          </span>
          <span class="muted" data-testid="event-count">
            {count(model.eventCount)} events
          </span>
        </div>
        {can(credentials, "prompt") && !exited ? (
          <div class="session-controls">
            <Interrupt controller={controller} />
            <ModelSwitch controller={controller} />
          </div>
        ) : null}
        <Problem error={controller.failure} />
      </header>
      <VirtualList<Item>
        items={model.items}
        keyOf={(item) => item.key}
        revOf={(item) => item.rev}
        estimate={estimateHeight}
        render={(item) => renderItem(item, context)}
        label="Session events"
        onFirstRows={markFirstRows}
      />
      <div class="sr-only" role="status" aria-live="polite">
        {model.pending.size ? `${model.pending.size} waiting for approval` : `Session ${state.status}`}
      </div>
      {changesOf !== null ? (
        <TurnChanges api={api} sandboxId={sandboxId} sessionId={sessionId} turn={changesOf} onClose={() => setChangesOf(null)} />
      ) : null}
      {can(credentials, "approve") ? <Approvals controller={controller} /> : null}
      {can(credentials, "prompt") ? (
        <PromptBox controller={controller} disabled={exited ? "The session has exited" : null} />
      ) : null}
    </div>
  );
}

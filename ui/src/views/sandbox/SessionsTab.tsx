/** A sandbox's agent sessions: the list (live), and a form to start one. */

import type { AgentSessionInfo } from "@cove/sdk/types.js";
import { useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { listSessions, startSession } from "../../api/resources.js";
import { Choice } from "../../components/Choice.js";
import { Problem } from "../../components/Problem.js";
import { type Column, Table } from "../../components/Table.js";
import { useAction } from "../../lib/action.js";
import { age, cost } from "../../lib/format.js";
import { usePoll } from "../../lib/poll.js";
import { href, navigate } from "../../lib/router.js";

/** Permission modes as people read them; the first is what the page starts sessions with. */
const PERMISSION_MODES: [string, string][] = [
  ["default", "ask before tools run"],
  ["acceptEdits", "allow file edits, ask for the rest"],
  ["plan", "plan only"],
  ["bypassPermissions", "never ask"],
];

function StartSession({ api, sandboxId }: { api: Api; sandboxId: string }) {
  const [prompt, setPrompt] = useState("");
  const [model, setModel] = useState("");
  const [mode, setMode] = useState(PERMISSION_MODES[0]![0]);
  const action = useAction();
  return (
    <form
      class="card form-grid"
      aria-label="New agent session"
      onSubmit={(event) => {
        event.preventDefault();
        const options: { prompt?: string; model?: string; permission_mode: string } = { permission_mode: mode };
        if (prompt.trim()) options.prompt = prompt.trim();
        if (model.trim()) options.model = model.trim();
        void action.run(async () => {
          const session = await startSession(api, sandboxId, options);
          navigate(href({ view: "session", sandboxId, sessionId: session.sessionId }));
        });
      }}
    >
      <label class="wide">
        First prompt
        <textarea rows={3} value={prompt} placeholder="optional: the session waits for one" onInput={(e) => setPrompt(e.currentTarget.value)} />
      </label>
      <label>
        Model <input value={model} placeholder="default" onInput={(e) => setModel(e.currentTarget.value)} />
      </label>
      <Choice label="Permissions" value={mode} onChange={setMode} options={PERMISSION_MODES} />
      <div class="actions">
        <button type="submit" class="primary" disabled={action.busy}>
          Start session
        </button>
      </div>
      <Problem error={action.error} />
    </form>
  );
}

export function SessionsTab({ api, sandboxId, running }: { api: Api; sandboxId: string; running: boolean }) {
  const sessions = usePoll((signal) => listSessions(api, sandboxId, signal), 2000, [api, sandboxId]);
  const columns: Column<AgentSessionInfo>[] = [
    {
      label: "Session",
      cell: (session) => (
        <a href={href({ view: "session", sandboxId, sessionId: session.sessionId })}>
          <code>{session.sessionId}</code>
        </a>
      ),
    },
    { label: "State", cell: (session) => <span class={`badge status-${session.status}`}>{session.status}</span> },
    { label: "Turns", cell: (session) => session.turns },
    { label: "Cost", cell: (session) => cost(session.totalCostUsd) },
    { label: "Age", cell: (session) => age(session.createdAt) },
  ];
  return (
    <div class="stack">
      {running ? <StartSession api={api} sandboxId={sandboxId} /> : null}
      <Problem error={sessions.error} />
      {sessions.data?.length ? (
        <Table rows={[...sessions.data].reverse()} keyOf={(session) => session.sessionId} columns={columns} />
      ) : sessions.data ? (
        <p class="muted">No agent sessions yet.</p>
      ) : null}
    </div>
  );
}

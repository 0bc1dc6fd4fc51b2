/** A sandbox's agent sessions: the list (live), and a form to start one. */

import { useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { listSessions, startSession } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <form
      class="card form-grid"
      aria-label="New agent session"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(null);
        try {
          const options: { prompt?: string; model?: string; permission_mode: string } = { permission_mode: mode };
          if (prompt.trim()) options.prompt = prompt.trim();
          if (model.trim()) options.model = model.trim();
          const session = await startSession(api, sandboxId, options);
          navigate(href({ view: "session", sandboxId, sessionId: session.sessionId }));
        } catch (caught) {
          setError(caught);
          setBusy(false);
        }
      }}
    >
      <label class="wide">
        First prompt
        <textarea rows={3} value={prompt} placeholder="optional: the session waits for one" onInput={(e) => setPrompt(e.currentTarget.value)} />
      </label>
      <label>
        Model <input value={model} placeholder="default" onInput={(e) => setModel(e.currentTarget.value)} />
      </label>
      <label>
        Permissions
        <select value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
          {PERMISSION_MODES.map(([value, text]) => (
            <option key={value} value={value}>
              {text}
            </option>
          ))}
        </select>
      </label>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Start session
        </button>
      </div>
      <Problem error={error} />
    </form>
  );
}

export function SessionsTab({ api, sandboxId, running }: { api: Api; sandboxId: string; running: boolean }) {
  const sessions = usePoll((signal) => listSessions(api, sandboxId, signal), 2000, [api, sandboxId]);
  return (
    <div class="stack">
      {running ? <StartSession api={api} sandboxId={sandboxId} /> : null}
      <Problem error={sessions.error} />
      {sessions.data?.length ? (
        <table class="table responsive">
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">State</th>
              <th scope="col">Turns</th>
              <th scope="col">Cost</th>
              <th scope="col">Age</th>
            </tr>
          </thead>
          <tbody>
            {[...sessions.data].reverse().map((session) => (
              <tr key={session.sessionId}>
                <td data-label="Session">
                  <a href={href({ view: "session", sandboxId, sessionId: session.sessionId })}>
                    <code>{session.sessionId}</code>
                  </a>
                </td>
                <td data-label="State">
                  <span class={`badge status-${session.status}`}>{session.status}</span>
                </td>
                <td data-label="Turns">{session.turns}</td>
                <td data-label="Cost">{cost(session.totalCostUsd)}</td>
                <td data-label="Age">{age(session.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : sessions.data ? (
        <p class="muted">No agent sessions yet.</p>
      ) : null}
    </div>
  );
}

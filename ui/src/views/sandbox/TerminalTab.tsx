/**
 * A sandbox's terminals (docs/terminals.md): the list, a new one, and one drawn by xterm.js — typed into, resized
 * with the page. A terminal outlives the page: opening it again shows its recent screen, then what comes live.
 * Attaching and typing take the `exec` scope; a token without it sees the list only.
 */

import { useEffect, useMemo, useRef, useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { type Credentials, can } from "../../api/credentials.js";
import { createTerminal, killTerminal, listTerminals, TerminalStream } from "../../api/terminal.js";
import { Problem } from "../../components/Problem.js";
import { Programs } from "../../components/Programs.js";
import { useAction } from "../../lib/action.js";
import { useObservable } from "../../lib/observable.js";
import { usePoll } from "../../lib/poll.js";

function Screen({ api, sandboxId, ptyId }: { api: Api; sandboxId: string; ptyId: string }) {
  const stream = useMemo(() => new TerminalStream(api, sandboxId, ptyId), [api, sandboxId, ptyId]);
  const element = useRef<HTMLDivElement>(null);
  const [failure, setFailure] = useState<unknown>(null);
  useObservable(stream);
  useEffect(() => {
    let close: (() => void) | null = null;
    let gone = false;
    import("../../terminal/screen.js")
      .then(({ openScreen }) => openScreen(element.current!, stream, `Keys for terminal ${ptyId}`))
      .then((done) => (gone ? done() : (close = done)), setFailure);
    return () => {
      gone = true;
      close?.();
      stream.close();
    };
  }, [stream]);
  return (
    <section class="output" aria-label={`Terminal ${ptyId}`}>
      <h2>
        Terminal <code>{ptyId}</code>
        {stream.ended && !stream.error ? <span class="muted"> — exited{stream.exitCode === null ? "" : ` with ${stream.exitCode}`}</span> : null}
      </h2>
      <div ref={element} class="terminal-screen" />
      <Problem error={failure ?? stream.error} />
    </section>
  );
}

export function TerminalTab({ api, credentials, sandboxId, running }: { api: Api; credentials: Credentials; sandboxId: string; running: boolean }) {
  const terminals = usePoll((signal) => listTerminals(api, sandboxId, signal), 3000, [api, sandboxId]);
  const [selected, setSelected] = useState<string | null>(null);
  const action = useAction();
  const attach = can(credentials, "exec");
  return (
    <div class="split">
      <div class="stack">
        {attach && running ? (
          <div class="inline-form">
            <button
              type="button"
              disabled={action.busy}
              onClick={() =>
                action.run(async () => {
                  const made = await createTerminal(api, sandboxId, 100, 30);
                  terminals.reload();
                  setSelected(made.pty_id);
                })
              }
            >
              New terminal
            </button>
          </div>
        ) : null}
        <Problem error={terminals.error ?? action.error} />
        {terminals.data?.length ? (
          <Programs
            label="Terminals"
            programs={terminals.data.map((t) => ({ id: t.pty_id, command: t.command, running: t.running, exitCode: t.exit_code, startedAt: t.started_at }))}
            selected={selected}
            onSelect={attach ? setSelected : undefined}
            onKill={attach ? (id) => action.run(() => killTerminal(api, sandboxId, id)).then(terminals.reload) : undefined}
            busy={action.busy}
          />
        ) : terminals.data ? (
          <p class="muted">No terminals.</p>
        ) : null}
      </div>
      {selected && attach ? <Screen key={selected} api={api} sandboxId={sandboxId} ptyId={selected} /> : null}
    </div>
  );
}

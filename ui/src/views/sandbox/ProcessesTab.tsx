/** A sandbox's processes: the list (live), a command to start in the background, and one process's output. */

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { type Credentials, can } from "../../api/credentials.js";
import { ProcessOutput } from "../../api/process.js";
import { killProcess, listProcesses, startProcess } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { useAction } from "../../lib/action.js";
import { age, count } from "../../lib/format.js";
import { useObservable } from "../../lib/observable.js";
import { usePoll } from "../../lib/poll.js";

function Output({ api, sandboxId, processId }: { api: Api; sandboxId: string; processId: string }) {
  const output = useMemo(() => new ProcessOutput(api, sandboxId, processId), [api, sandboxId, processId]);
  useEffect(() => {
    output.open();
    return () => output.close();
  }, [output]);
  useObservable(output);
  const pre = useRef<HTMLPreElement>(null);
  useLayoutEffect(() => {
    const element = pre.current;
    if (element) element.scrollTop = element.scrollHeight;
  });
  return (
    <section class="output" aria-label={`Output of ${processId}`}>
      <h2>
        Output of <code>{processId}</code>
        {output.ended ? <span class="muted"> — exited{output.exitCode === null ? "" : ` with ${output.exitCode}`}</span> : null}
      </h2>
      {output.dropped ? <p class="muted">The first {count(output.dropped)} characters are not shown.</p> : null}
      <pre ref={pre} class="terminal-text" tabIndex={0}>
        {output.text}
      </pre>
      {output.error ? <Problem error={output.error} /> : null}
    </section>
  );
}

function RunCommand({ api, sandboxId, onStarted }: { api: Api; sandboxId: string; onStarted: (id: string) => void }) {
  const [command, setCommand] = useState("");
  const action = useAction();
  return (
    <form
      class="inline-form"
      onSubmit={(event) => {
        event.preventDefault();
        void action.run(async () => {
          const process = await startProcess(api, sandboxId, command);
          setCommand("");
          onStarted(process.processId);
        });
      }}
    >
      <label>
        Command <input value={command} placeholder="npm run dev" onInput={(e) => setCommand(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={action.busy || !command.trim()}>
        Run in background
      </button>
      <Problem error={action.error} />
    </form>
  );
}

export function ProcessesTab({ api, credentials, sandboxId }: { api: Api; credentials: Credentials; sandboxId: string }) {
  const processes = usePoll((signal) => listProcesses(api, sandboxId, signal), 2000, [api, sandboxId]);
  const [selected, setSelected] = useState<string | null>(null);
  const kill = useAction();
  return (
    <div class="split">
      <div class="stack">
        {can(credentials, "exec") ? (
          <RunCommand
            api={api}
            sandboxId={sandboxId}
            onStarted={(id) => {
              processes.reload();
              setSelected(id);
            }}
          />
        ) : null}
        <Problem error={processes.error ?? kill.error} />
        {processes.data?.length ? (
          <ul class="list" aria-label="Processes">
            {[...processes.data].reverse().map((process) => (
              <li key={process.processId} class={process.processId === selected ? "selected" : ""}>
                <button type="button" class="link" onClick={() => setSelected(process.processId)} aria-pressed={process.processId === selected}>
                  <code>{process.processId}</code> {process.command.join(" ")}
                </button>
                <span class="muted">
                  {process.running ? "running" : `exited ${process.exitCode ?? ""}`} · {age(process.startedAt)}
                </span>
                {process.running && can(credentials, "exec") ? (
                  <button
                    type="button"
                    class="danger small"
                    aria-label={`Kill ${process.processId}`}
                    disabled={kill.busy}
                    onClick={() => kill.run(() => killProcess(api, sandboxId, process.processId)).then(processes.reload)}
                  >
                    Kill
                  </button>
                ) : null}
              </li>
            ))}
          </ul>
        ) : processes.data ? (
          <p class="muted">No processes.</p>
        ) : null}
      </div>
      {selected ? <Output key={selected} api={api} sandboxId={sandboxId} processId={selected} /> : null}
    </div>
  );
}

/** A sandbox's processes: the list (live), a command to start in the background, and one process's output. */

import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { type Credentials, can } from "../../api/credentials.js";
import { ProcessOutput } from "../../api/process.js";
import { killProcess, listProcesses, startProcess } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { Programs } from "../../components/Programs.js";
import { useAction } from "../../lib/action.js";
import { count } from "../../lib/format.js";
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
          <Programs
            label="Processes"
            programs={processes.data.map((process) => ({ ...process, id: process.processId }))}
            selected={selected}
            onSelect={setSelected}
            onKill={can(credentials, "exec") ? (id) => kill.run(() => killProcess(api, sandboxId, id)).then(processes.reload) : undefined}
            busy={kill.busy}
          />
        ) : processes.data ? (
          <p class="muted">No processes.</p>
        ) : null}
      </div>
      {selected ? <Output key={selected} api={api} sandboxId={sandboxId} processId={selected} /> : null}
    </div>
  );
}

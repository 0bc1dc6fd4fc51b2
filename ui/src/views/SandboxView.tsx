/** The sandbox view: what the sandbox is (kept live), and a tab for each thing in it. */

import type { VNode } from "preact";

import type { Api } from "../api/client.js";
import { type Credentials, can } from "../api/credentials.js";
import { getSandbox, killSandbox } from "../api/resources.js";
import { Problem } from "../components/Problem.js";
import { type Tab, Tabs } from "../components/Tabs.js";
import { useAction } from "../lib/action.js";
import { age } from "../lib/format.js";
import { usePoll } from "../lib/poll.js";
import { href, type SandboxTab } from "../lib/router.js";
import { CheckpointsTab } from "./sandbox/CheckpointsTab.js";
import { FilesTab } from "./sandbox/FilesTab.js";
import { PortsTab } from "./sandbox/PortsTab.js";
import { ProcessesTab } from "./sandbox/ProcessesTab.js";
import { SessionsTab } from "./sandbox/SessionsTab.js";
import { TerminalTab } from "./sandbox/TerminalTab.js";
import { Labels, limitsText } from "./SandboxesView.js";

interface Props {
  api: Api;
  credentials: Credentials;
  sandboxId: string;
  tab: SandboxTab;
}

const TAB_LABELS: [SandboxTab, string][] = [
  ["sessions", "Sessions"],
  ["processes", "Processes"],
  ["terminal", "Terminal"],
  ["files", "Files"],
  ["checkpoints", "Checkpoints"],
  ["ports", "Ports"],
];

export function SandboxView({ api, credentials, sandboxId, tab }: Props) {
  const sandbox = usePoll((signal) => getSandbox(api, sandboxId, signal), 3000, [api, sandboxId]);
  const kill = useAction();
  const info = sandbox.data;
  const running = info?.state === "running";
  // Ports and their tokens are a key's to see.
  const shown = TAB_LABELS.filter(([id]) => id !== "ports" || credentials.kind === "key");
  const current = shown.some(([id]) => id === tab) ? tab : "sessions";
  const tabs: Tab[] = shown.map(([id, label]) => ({ id, label, href: href({ view: "sandbox", sandboxId, tab: id }) }));

  const panels: Record<SandboxTab, () => VNode> = {
    sessions: () => <SessionsTab api={api} sandboxId={sandboxId} running={running && can(credentials, "prompt")} />,
    processes: () => <ProcessesTab api={api} credentials={credentials} sandboxId={sandboxId} />,
    terminal: () => <TerminalTab api={api} credentials={credentials} sandboxId={sandboxId} running={running} />,
    files: () => <FilesTab api={api} credentials={credentials} sandboxId={sandboxId} />,
    checkpoints: () => <CheckpointsTab api={api} sandboxId={sandboxId} running={running} owner={credentials.kind === "key"} />,
    ports: () => <PortsTab api={api} sandboxId={sandboxId} running={running} />,
  };

  return (
    <section class="page">
      <div class="page-head">
        <h1>
          Sandbox <code>{sandboxId}</code>
        </h1>
        {info && running && credentials.kind === "key" ? (
          <button
            type="button"
            class="danger"
            disabled={kill.busy}
            onClick={() => {
              if (confirm(`Kill sandbox ${sandboxId}? Its processes and agents stop.`)) {
                void kill.run(() => killSandbox(api, sandboxId)).then(sandbox.reload);
              }
            }}
          >
            Kill sandbox
          </button>
        ) : null}
      </div>
      <Problem error={sandbox.error ?? kill.error} />
      {info ? (
        <dl class="facts">
          <div>
            <dt>State</dt>
            <dd>
              <span class={`badge state-${info.state}`}>{info.state}</span>
              {info.stopReason ? ` (${info.stopReason})` : ""}
            </dd>
          </div>
          <div>
            <dt>Age</dt>
            <dd>{age(info.createdAt)}</dd>
          </div>
          <div>
            <dt>Network</dt>
            <dd>{info.network.mode}</dd>
          </div>
          <div>
            <dt>Limits and use</dt>
            <dd>{limitsText(info)}</dd>
          </div>
          <div>
            <dt>Labels</dt>
            <dd>
              <Labels labels={info.labels} />
            </dd>
          </div>
        </dl>
      ) : null}
      {can(credentials, "read") ? (
        <Tabs label="Sandbox" tabs={tabs} selected={current}>
          {panels[current]()}
        </Tabs>
      ) : null}
    </section>
  );
}

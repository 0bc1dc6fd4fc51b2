/**
 * The sandboxes view: every sandbox the key can see, kept live (state, age, labels, limits and use, network,
 * published ports), filtered by state, labels and id (and tenant, for the admin); create one (fresh, or forked
 * from a checkpoint) and kill one.
 */

import { useState } from "preact/hooks";

import type { SandboxInfo } from "@cove/sdk/types.js";

import type { Api } from "../api/client.js";
import type { Credentials } from "../api/credentials.js";
import {
  createSandbox,
  killSandbox,
  listCheckpoints,
  listPorts,
  listSandboxes,
  type PublishedPort,
  type SandboxSpec,
} from "../api/resources.js";
import { Choice } from "../components/Choice.js";
import { Problem } from "../components/Problem.js";
import { type Column, Table } from "../components/Table.js";
import { useAction } from "../lib/action.js";
import { age, bytes } from "../lib/format.js";
import { usePoll } from "../lib/poll.js";
import { href, navigate } from "../lib/router.js";
import { PreviewLink } from "./sandbox/PortsTab.js";

const POLL_MS = 2000;
const PORTS_POLL_MS = 5000;

export function limitsText(sandbox: SandboxInfo): string {
  const { memoryMb, cpus, pids, diskMb } = sandbox.limits;
  const parts = [];
  if (memoryMb) parts.push(`${memoryMb} MiB`);
  if (cpus) parts.push(`${cpus} CPU`);
  if (pids) parts.push(`${pids} pids`);
  if (diskMb) {
    const used = sandbox.diskUsedBytes === null ? "" : `${bytes(sandbox.diskUsedBytes)} of `;
    parts.push(`${used}${diskMb} MiB disk`);
  }
  if (sandbox.oomKills) parts.push(`${sandbox.oomKills} OOM kills`);
  return parts.join(" · ") || "none";
}

export function Labels({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels);
  if (!entries.length) return <span class="muted">—</span>;
  return (
    <ul class="labels">
      {entries.map(([key, value]) => (
        <li key={key}>
          {key}={value}
        </li>
      ))}
    </ul>
  );
}

/** The published ports of the running sandboxes listed (the first 50), by sandbox: asked less often than the list,
 * being one request a sandbox. */
function usePorts(api: Api, sandboxes: SandboxInfo[] | undefined) {
  const running = (sandboxes ?? []).filter((sandbox) => sandbox.state === "running").slice(0, 50);
  const ids = running.map((sandbox) => sandbox.id);
  return usePoll(
    async (signal) => {
      const lists = await Promise.all(ids.map((id) => listPorts(api, id, signal).catch(() => [])));
      return new Map(ids.map((id, index) => [id, lists[index]!]));
    },
    PORTS_POLL_MS,
    [api, ids.join(",")],
  );
}

function Ports({ ports }: { ports: PublishedPort[] | undefined }) {
  if (!ports?.length) return <span class="muted">—</span>;
  return (
    <ul class="labels">
      {ports.map((port) => (
        <li key={port.port}>
          <PreviewLink port={port} text={`${port.port}${port.public ? "" : " (private)"}`} />
        </li>
      ))}
    </ul>
  );
}

/** `team=infra, env=dev` → `{team: "infra", env: "dev"}`. */
function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",")) {
    const [key, ...value] = part.split("=");
    if (key?.trim()) labels[key.trim()] = value.join("=").trim();
  }
  return labels;
}

/** Checkpoints to fork from: those of the sandboxes listed (a checkpoint outlives its sandbox's kill). */
function useCheckpoints(api: Api, sandboxes: SandboxInfo[] | undefined, wanted: boolean) {
  return usePoll(
    async (signal) => {
      if (!wanted || !sandboxes) return [];
      const lists = await Promise.all(sandboxes.slice(0, 50).map((s) => listCheckpoints(api, s.id, signal).catch(() => [])));
      return lists.flat();
    },
    30_000,
    [api, wanted, sandboxes?.length],
  );
}

function CreateSandbox({ api, sandboxes }: { api: Api; sandboxes: SandboxInfo[] | undefined }) {
  const [open, setOpen] = useState(false);
  const [labels, setLabels] = useState("");
  const [memory, setMemory] = useState("");
  const [cpus, setCpus] = useState("");
  const [network, setNetwork] = useState("");
  const [checkpoint, setCheckpoint] = useState("");
  const action = useAction();
  const checkpoints = useCheckpoints(api, sandboxes, open);

  const submit = (event: Event) => {
    event.preventDefault();
    const spec: SandboxSpec = { labels: parseLabels(labels), limits: {} };
    if (memory) spec.limits.memory_mb = Number(memory);
    if (cpus) spec.limits.cpus = Number(cpus);
    if (network) spec.network = network;
    if (checkpoint) spec.from_checkpoint = checkpoint;
    void action.run(async () => {
      const sandbox = await createSandbox(api, spec);
      navigate(href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" }));
    });
  };

  if (!open) {
    return (
      <button type="button" class="primary" onClick={() => setOpen(true)}>
        New sandbox
      </button>
    );
  }
  const forks: [string, string][] = (checkpoints.data ?? []).map((c) => [c.id, `${c.name ? `${c.name} (${c.id})` : c.id} of ${c.sandboxId}`]);
  return (
    <form class="card form-grid" onSubmit={submit} aria-label="New sandbox">
      <label>
        Labels <input value={labels} placeholder="team=infra, env=dev" onInput={(e) => setLabels(e.currentTarget.value)} />
      </label>
      <label>
        Memory (MiB) <input type="number" min={16} value={memory} placeholder="server default" onInput={(e) => setMemory(e.currentTarget.value)} />
      </label>
      <label>
        CPUs <input type="number" min={0.01} step={0.01} value={cpus} placeholder="no limit" onInput={(e) => setCpus(e.currentTarget.value)} />
      </label>
      <Choice label="Network" value={network} onChange={setNetwork} options={NETWORKS} />
      <Choice label="From checkpoint" value={checkpoint} onChange={setCheckpoint} options={[["", "none: a fresh sandbox"], ...forks]} />
      <div class="actions">
        <button type="submit" class="primary" disabled={action.busy}>
          Create sandbox
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      <Problem error={action.error} />
    </form>
  );
}

function KillButton({ api, sandbox, onKilled }: { api: Api; sandbox: SandboxInfo; onKilled: () => void }) {
  const action = useAction();
  if (sandbox.state !== "running" && sandbox.state !== "starting") return null;
  return (
    <>
      <button
        type="button"
        class="danger"
        aria-label={`Kill ${sandbox.id}`}
        disabled={action.busy}
        onClick={() => {
          if (confirm(`Kill sandbox ${sandbox.id}? Its processes and agents stop.`)) {
            void action.run(() => killSandbox(api, sandbox.id)).then(onKilled);
          }
        }}
      >
        Kill
      </button>
      <Problem error={action.error} />
    </>
  );
}

const NETWORKS: [string, string][] = [
  ["", "server default"],
  ["egress", "egress"],
  ["none", "none"],
  ["host", "host"],
];
const STATES: [string, string][] = [
  ["running", "running"],
  ["", "all"],
  ["stopped", "stopped"],
  ["failed", "failed"],
];

const COLUMNS: Column<SandboxInfo>[] = [
  {
    label: "Sandbox",
    cell: (sandbox) => (
      <a href={href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" })}>
        <code>{sandbox.id}</code>
      </a>
    ),
  },
  {
    label: "State",
    cell: (sandbox) => (
      <>
        <span class={`badge state-${sandbox.state}`}>{sandbox.state}</span>
        {sandbox.stopReason ? <span class="muted"> ({sandbox.stopReason})</span> : null}
      </>
    ),
  },
  { label: "Age", cell: (sandbox) => age(sandbox.createdAt) },
  { label: "Labels", cell: (sandbox) => <Labels labels={sandbox.labels} /> },
  { label: "Limits and use", cell: limitsText },
  { label: "Network", cell: (sandbox) => sandbox.network.mode },
];

export function SandboxesView({ api, credentials }: { api: Api; credentials: Credentials }) {
  const [state, setState] = useState("running");
  const [labelText, setLabelText] = useState("");
  const [tenant, setTenant] = useState("");
  const [search, setSearch] = useState("");
  const labels = labelText
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.includes("="));
  const filter = { state, labels, tenant: tenant.trim() };
  const polled = usePoll((signal) => listSandboxes(api, filter, signal), POLL_MS, [api, state, labels.join(","), filter.tenant]);
  const ports = usePorts(api, polled.data);
  const shown = (polled.data ?? []).filter((sandbox) => sandbox.id.includes(search.trim()));
  const columns = [...COLUMNS];
  if (credentials.admin) columns.splice(1, 0, { label: "Tenant", cell: (sandbox) => <code>{sandbox.tenantId}</code> });
  columns.push({ label: "Ports", cell: (sandbox) => <Ports ports={ports.data?.get(sandbox.id)} /> });
  columns.push({ label: "Actions", silent: true, cell: (sandbox) => <KillButton api={api} sandbox={sandbox} onKilled={polled.reload} /> });

  return (
    <section class="page">
      <div class="page-head">
        <h1>Sandboxes</h1>
        <CreateSandbox api={api} sandboxes={polled.data} />
      </div>
      <form class="filters" role="search" aria-label="Filter sandboxes" onSubmit={(e) => e.preventDefault()}>
        <Choice label="State" value={state} onChange={setState} options={STATES} />
        <label>
          Labels <input value={labelText} placeholder="key=value, …" onInput={(e) => setLabelText(e.currentTarget.value)} />
        </label>
        {credentials.admin ? (
          <label>
            Tenant <input value={tenant} placeholder="key_…" onInput={(e) => setTenant(e.currentTarget.value)} />
          </label>
        ) : null}
        <label>
          Id <input type="search" value={search} placeholder="sbx_…" onInput={(e) => setSearch(e.currentTarget.value)} />
        </label>
      </form>
      <Problem error={polled.error} />
      {polled.data === undefined ? (
        <p class="muted">Loading…</p>
      ) : shown.length === 0 ? (
        <p class="muted">No sandboxes{state ? ` ${state}` : ""}.</p>
      ) : (
        <Table rows={shown} keyOf={(sandbox) => sandbox.id} columns={columns} />
      )}
    </section>
  );
}

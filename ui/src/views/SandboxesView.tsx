/**
 * The sandboxes view: every sandbox the key can see, kept live (state, age, labels, limits and use, network),
 * filtered by state, labels and id; create one (fresh, or forked from a checkpoint) and kill one.
 */

import { useState } from "preact/hooks";

import type { SandboxInfo } from "@cove/sdk/types.js";

import type { Api } from "../api/client.js";
import { createSandbox, killSandbox, listCheckpoints, listSandboxes, type SandboxSpec } from "../api/resources.js";
import { Problem } from "../components/Problem.js";
import { age, bytes } from "../lib/format.js";
import { usePoll } from "../lib/poll.js";
import { href, navigate } from "../lib/router.js";

const POLL_MS = 2000;

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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const checkpoints = useCheckpoints(api, sandboxes, open);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const spec: SandboxSpec = { labels: parseLabels(labels), limits: {} };
    if (memory) spec.limits.memory_mb = Number(memory);
    if (cpus) spec.limits.cpus = Number(cpus);
    if (network) spec.network = network;
    if (checkpoint) spec.from_checkpoint = checkpoint;
    try {
      const sandbox = await createSandbox(api, spec);
      navigate(href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" }));
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  if (!open) {
    return (
      <button type="button" class="primary" onClick={() => setOpen(true)}>
        New sandbox
      </button>
    );
  }
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
      <label>
        Network
        <select value={network} onChange={(e) => setNetwork(e.currentTarget.value)}>
          <option value="">server default</option>
          <option value="egress">egress</option>
          <option value="none">none</option>
          <option value="host">host</option>
        </select>
      </label>
      <label>
        From checkpoint
        <select value={checkpoint} onChange={(e) => setCheckpoint(e.currentTarget.value)}>
          <option value="">none: a fresh sandbox</option>
          {(checkpoints.data ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.name ? `${c.name} (${c.id})` : c.id} of {c.sandboxId}
            </option>
          ))}
        </select>
      </label>
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          Create sandbox
        </button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      <Problem error={error} />
    </form>
  );
}

function KillButton({ api, sandbox, onKilled }: { api: Api; sandbox: SandboxInfo; onKilled: () => void }) {
  const [error, setError] = useState<unknown>(null);
  if (sandbox.state !== "running" && sandbox.state !== "starting") return null;
  return (
    <>
      <button
        type="button"
        class="danger"
        aria-label={`Kill ${sandbox.id}`}
        onClick={async () => {
          if (!confirm(`Kill sandbox ${sandbox.id}? Its processes and agents stop.`)) return;
          try {
            await killSandbox(api, sandbox.id);
            onKilled();
          } catch (caught) {
            setError(caught);
          }
        }}
      >
        Kill
      </button>
      <Problem error={error} />
    </>
  );
}

export function SandboxesView({ api }: { api: Api }) {
  const [state, setState] = useState("running");
  const [labelText, setLabelText] = useState("");
  const [search, setSearch] = useState("");
  const labels = labelText
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.includes("="));
  const polled = usePoll((signal) => listSandboxes(api, state || null, labels, signal), POLL_MS, [api, state, labels.join(",")]);
  const shown = (polled.data ?? []).filter((sandbox) => sandbox.id.includes(search.trim()));

  return (
    <section class="page">
      <div class="page-head">
        <h1>Sandboxes</h1>
        <CreateSandbox api={api} sandboxes={polled.data} />
      </div>
      <form class="filters" role="search" aria-label="Filter sandboxes" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="running">running</option>
            <option value="">all</option>
            <option value="stopped">stopped</option>
            <option value="failed">failed</option>
          </select>
        </label>
        <label>
          Labels <input value={labelText} placeholder="key=value, …" onInput={(e) => setLabelText(e.currentTarget.value)} />
        </label>
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
        <table class="table responsive">
          <thead>
            <tr>
              <th scope="col">Sandbox</th>
              <th scope="col">State</th>
              <th scope="col">Age</th>
              <th scope="col">Labels</th>
              <th scope="col">Limits and use</th>
              <th scope="col">Network</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {shown.map((sandbox) => (
              <tr key={sandbox.id}>
                <td data-label="Sandbox">
                  <a href={href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" })}>
                    <code>{sandbox.id}</code>
                  </a>
                </td>
                <td data-label="State">
                  <span class={`badge state-${sandbox.state}`}>{sandbox.state}</span>
                  {sandbox.stopReason ? <span class="muted"> ({sandbox.stopReason})</span> : null}
                </td>
                <td data-label="Age">{age(sandbox.createdAt)}</td>
                <td data-label="Labels">
                  <Labels labels={sandbox.labels} />
                </td>
                <td data-label="Limits and use">{limitsText(sandbox)}</td>
                <td data-label="Network">{sandbox.network.mode}</td>
                <td data-label="Actions">
                  <KillButton api={api} sandbox={sandbox} onKilled={polled.reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

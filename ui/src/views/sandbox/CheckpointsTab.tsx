/**
 * A sandbox's checkpoints: take one, restore the sandbox to one (in place: its processes are killed), fork one
 * into a new sandbox (constant time, whatever the size), delete one. All of that is an owner's (a key's); a
 * token's page lists them only.
 */

import type { Checkpoint } from "@cove/sdk/types.js";
import { useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { createCheckpoint, createSandbox, deleteCheckpoint, listCheckpoints, restoreCheckpoint } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { type Column, Table } from "../../components/Table.js";
import { useAction } from "../../lib/action.js";
import { age, bytes, clock } from "../../lib/format.js";
import { usePoll } from "../../lib/poll.js";
import { href, navigate } from "../../lib/router.js";

export function CheckpointsTab(props: { api: Api; sandboxId: string; running: boolean; owner: boolean }) {
  const { api, sandboxId, running, owner } = props;
  const checkpoints = usePoll((signal) => listCheckpoints(api, sandboxId, signal), 5000, [api, sandboxId]);
  const [name, setName] = useState("");
  const [status, setStatus] = useState("");
  const action = useAction();

  const act = async (what: string, run: () => Promise<unknown>) => {
    setStatus(`${what}…`);
    const done = await action.run(run);
    setStatus(done ? `${what}: done` : "");
    checkpoints.reload();
    return done;
  };

  const buttons = (checkpoint: Checkpoint) => (
    <div class="actions">
      {running ? (
        <button
          type="button"
          disabled={action.busy}
          aria-label={`Restore ${checkpoint.id}`}
          onClick={() => {
            if (confirm(`Restore ${sandboxId} to ${checkpoint.id}? Its processes are killed and later changes lost.`)) {
              void act(`Restoring ${checkpoint.id}`, () => restoreCheckpoint(api, sandboxId, checkpoint.id));
            }
          }}
        >
          Restore
        </button>
      ) : null}
      <button
        type="button"
        disabled={action.busy}
        aria-label={`Fork ${checkpoint.id}`}
        onClick={() =>
          act(`Forking ${checkpoint.id}`, async () => {
            const sandbox = await createSandbox(api, { labels: {}, limits: {}, from_checkpoint: checkpoint.id });
            navigate(href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" }));
          })
        }
      >
        Fork
      </button>
      <button
        type="button"
        class="danger"
        disabled={action.busy}
        aria-label={`Delete ${checkpoint.id}`}
        onClick={() => {
          if (confirm(`Delete checkpoint ${checkpoint.id}?`)) void act(`Deleting ${checkpoint.id}`, () => deleteCheckpoint(api, checkpoint.id));
        }}
      >
        Delete
      </button>
    </div>
  );

  const columns: Column<Checkpoint>[] = [
    { label: "Checkpoint", cell: (checkpoint) => <code>{checkpoint.id}</code> },
    { label: "Name", cell: (checkpoint) => checkpoint.name ?? <span class="muted">—</span> },
    { label: "Taken", cell: (checkpoint) => <span title={clock(checkpoint.createdAt)}>{age(checkpoint.createdAt)} ago</span> },
    { label: "Size", cell: (checkpoint) => bytes(checkpoint.sizeBytes) },
  ];
  if (owner) columns.push({ label: "Actions", silent: true, cell: buttons });

  return (
    <div class="stack">
      {running && owner ? (
        <form
          class="inline-form"
          onSubmit={(event) => {
            event.preventDefault();
            void act("Taking a checkpoint", () => createCheckpoint(api, sandboxId, name.trim() || null)).then((done) => done && setName(""));
          }}
        >
          <label>
            Checkpoint name <input value={name} placeholder="optional" onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={action.busy}>
            Take checkpoint
          </button>
        </form>
      ) : null}
      <p class="muted" role="status">
        {status}
      </p>
      <Problem error={action.error ?? checkpoints.error} />
      {checkpoints.data?.length ? (
        <Table rows={checkpoints.data} keyOf={(checkpoint) => checkpoint.id} columns={columns} />
      ) : checkpoints.data ? (
        <p class="muted">No checkpoints yet.</p>
      ) : null}
    </div>
  );
}

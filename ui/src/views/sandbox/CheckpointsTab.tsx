/**
 * A sandbox's checkpoints: take one, restore the sandbox to one (in place: its processes are killed), fork one
 * into a new sandbox (constant time, whatever the size), delete one.
 */

import { useState } from "preact/hooks";

import type { Checkpoint } from "@cove/sdk/types.js";

import type { Api } from "../../api/client.js";
import { createCheckpoint, createSandbox, deleteCheckpoint, listCheckpoints, restoreCheckpoint } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { age, bytes, clock } from "../../lib/format.js";
import { usePoll } from "../../lib/poll.js";
import { href, navigate } from "../../lib/router.js";

export function CheckpointsTab({ api, sandboxId, running }: { api: Api; sandboxId: string; running: boolean }) {
  const checkpoints = usePoll((signal) => listCheckpoints(api, sandboxId, signal), 5000, [api, sandboxId]);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState("");
  const [error, setError] = useState<unknown>(null);

  const act = async (what: string, action: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    setStatus(`${what}…`);
    try {
      await action();
      setStatus(`${what}: done`);
      checkpoints.reload();
    } catch (caught) {
      setStatus("");
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  const fork = (checkpoint: Checkpoint) =>
    act(`Forking ${checkpoint.id}`, async () => {
      const sandbox = await createSandbox(api, { labels: {}, limits: {}, from_checkpoint: checkpoint.id });
      navigate(href({ view: "sandbox", sandboxId: sandbox.id, tab: "sessions" }));
    });

  return (
    <div class="stack">
      {running ? (
        <form
          class="inline-form"
          onSubmit={(event) => {
            event.preventDefault();
            void act("Taking a checkpoint", () => createCheckpoint(api, sandboxId, name.trim() || null)).then(() => setName(""));
          }}
        >
          <label>
            Checkpoint name <input value={name} placeholder="optional" onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Take checkpoint
          </button>
        </form>
      ) : null}
      <p class="muted" role="status">
        {status}
      </p>
      <Problem error={error ?? checkpoints.error} />
      {checkpoints.data?.length ? (
        <table class="table responsive">
          <thead>
            <tr>
              <th scope="col">Checkpoint</th>
              <th scope="col">Name</th>
              <th scope="col">Taken</th>
              <th scope="col">Size</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {checkpoints.data.map((checkpoint) => (
              <tr key={checkpoint.id}>
                <td data-label="Checkpoint">
                  <code>{checkpoint.id}</code>
                </td>
                <td data-label="Name">{checkpoint.name ?? <span class="muted">—</span>}</td>
                <td data-label="Taken" title={clock(checkpoint.createdAt)}>
                  {age(checkpoint.createdAt)} ago
                </td>
                <td data-label="Size">{bytes(checkpoint.sizeBytes)}</td>
                <td data-label="Actions" class="actions">
                  {running ? (
                    <button
                      type="button"
                      disabled={busy}
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
                  <button type="button" disabled={busy} aria-label={`Fork ${checkpoint.id}`} onClick={() => fork(checkpoint)}>
                    Fork
                  </button>
                  <button
                    type="button"
                    class="danger"
                    disabled={busy}
                    aria-label={`Delete ${checkpoint.id}`}
                    onClick={() => {
                      if (confirm(`Delete checkpoint ${checkpoint.id}?`)) {
                        void act(`Deleting ${checkpoint.id}`, () => deleteCheckpoint(api, checkpoint.id));
                      }
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : checkpoints.data ? (
        <p class="muted">No checkpoints yet.</p>
      ) : null}
    </div>
  );
}

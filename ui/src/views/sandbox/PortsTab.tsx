/**
 * A sandbox's published ports: publish one (private, opened by its token, or public), open its preview, make it
 * public or private, close it. Ports and their tokens are a key's to see (a token's page has no such tab).
 */

import { useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { closePort, listPorts, previewLink, type PublishedPort, publishPort } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { type Column, Table } from "../../components/Table.js";
import { useAction } from "../../lib/action.js";
import { usePoll } from "../../lib/poll.js";

/** A link that opens a port's preview in a new tab, named for the port; it shows `text` (default: the URL). */
export function PreviewLink({ port, text }: { port: PublishedPort; text?: string }) {
  return (
    <a href={previewLink(port)} target="_blank" rel="noopener noreferrer" aria-label={`Preview of port ${port.port}`}>
      {text ?? port.url}
    </a>
  );
}

export function PortsTab({ api, sandboxId, running }: { api: Api; sandboxId: string; running: boolean }) {
  const ports = usePoll((signal) => listPorts(api, sandboxId, signal), 3000, [api, sandboxId]);
  const [port, setPort] = useState("");
  const [isPublic, setPublic] = useState(false);
  const action = useAction();
  const number = Number(port);
  const valid = Number.isInteger(number) && number >= 1 && number <= 65535;

  const columns: Column<PublishedPort>[] = [
    { label: "Port", cell: (published) => published.port },
    { label: "Access", cell: (published) => (published.public ? "public" : "private (token)") },
    { label: "Preview", cell: (published) => <PreviewLink port={published} /> },
    {
      label: "Actions",
      silent: true,
      cell: (published) => (
        <div class="actions">
          <button
            type="button"
            class="small"
            aria-label={`Make port ${published.port} ${published.public ? "private" : "public"}`}
            disabled={action.busy}
            onClick={() => action.run(() => publishPort(api, sandboxId, published.port, !published.public)).then(ports.reload)}
          >
            Make {published.public ? "private" : "public"}
          </button>
          <button
            type="button"
            class="danger small"
            aria-label={`Close port ${published.port}`}
            disabled={action.busy}
            onClick={() => action.run(() => closePort(api, sandboxId, published.port)).then(ports.reload)}
          >
            Close
          </button>
        </div>
      ),
    },
  ];

  return (
    <div class="stack">
      {running ? (
        <form
          class="inline-form"
          onSubmit={(event) => {
            event.preventDefault();
            void action.run(async () => {
              await publishPort(api, sandboxId, number, isPublic);
              setPort("");
              ports.reload();
            });
          }}
        >
          <label>
            Port <input inputMode="numeric" value={port} placeholder="8000" onInput={(e) => setPort(e.currentTarget.value)} />
          </label>
          <label>
            <input type="checkbox" checked={isPublic} onChange={(e) => setPublic(e.currentTarget.checked)} /> Public
          </label>
          <button type="submit" disabled={action.busy || !valid}>
            Publish
          </button>
        </form>
      ) : null}
      <Problem error={ports.error ?? action.error} />
      {ports.data?.length ? (
        <Table rows={ports.data} keyOf={(published) => String(published.port)} columns={columns} />
      ) : ports.data ? (
        <p class="muted">No published ports.</p>
      ) : null}
    </div>
  );
}

/**
 * What a turn changed, side by side: the turn's unified diff (paged in from the server) drawn as two columns per
 * file, the state before the turn on the left and after it on the right. A modal dialog: Escape or Close returns
 * to the stream, where the focus was.
 */

import { useEffect, useRef, useState } from "preact/hooks";

import type { Api } from "../../api/client.js";
import { getTurnDiff, type TurnDiff } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { type DiffFile, fileTitle, parseDiff, type Row, type Side } from "../../lib/diff.js";
import { count } from "../../lib/format.js";

function Cell({ side, kind, which }: { side: Side | null; kind: Row["kind"]; which: "old" | "new" }) {
  const change = kind === "change" && side ? (which === "old" ? " removed" : " added") : "";
  return (
    <>
      <td class="diff-number">{side?.number ?? ""}</td>
      <td class={`diff-line${change}${side ? "" : " empty"}`}>{side?.text ?? ""}</td>
    </>
  );
}

function File({ file }: { file: DiffFile }) {
  const title = fileTitle(file);
  return (
    <section class="diff-file" aria-label={title}>
      <h3>
        <code>{title}</code>
      </h3>
      {file.meta.length ? <p class="muted small">{file.meta.join(" · ")}</p> : null}
      {file.rows.length ? (
        <div class="diff-scroll">
          <table class="diff-table">
            <caption class="sr-only">
              {title}: before the turn on the left, after it on the right
            </caption>
            <colgroup>
              <col class="diff-number" />
              <col />
              <col class="diff-number" />
              <col />
            </colgroup>
            <thead class="sr-only">
              <tr>
                <th scope="col">Line before</th>
                <th scope="col">Before</th>
                <th scope="col">Line after</th>
                <th scope="col">After</th>
              </tr>
            </thead>
            <tbody>
              {file.rows.map((row, index) =>
                row.kind === "hunk" || row.kind === "note" ? (
                  <tr key={index} class={`diff-${row.kind}`}>
                    <td colSpan={4}>{row.text}</td>
                  </tr>
                ) : (
                  <tr key={index}>
                    <Cell side={row.left} kind={row.kind} which="old" />
                    <Cell side={row.right} kind={row.kind} which="new" />
                  </tr>
                ),
              )}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function TurnChanges(props: { api: Api; sandboxId: string; sessionId: string; turn: number; onClose: () => void }) {
  const { api, sandboxId, sessionId, turn, onClose } = props;
  const dialog = useRef<HTMLDialogElement>(null);
  const [diff, setDiff] = useState<TurnDiff | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    const element = dialog.current!;
    const before = document.activeElement as HTMLElement | null;
    element.showModal();
    return () => before?.focus();
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    getTurnDiff(api, sandboxId, sessionId, turn, controller.signal).then(setDiff, (caught: unknown) => {
      if (!controller.signal.aborted) setError(caught);
    });
    return () => controller.abort();
  }, [api, sandboxId, sessionId, turn]);

  const files = diff ? parseDiff(diff.diff) : [];
  return (
    <dialog ref={dialog} class="turn-changes" aria-labelledby="turn-changes-title" onClose={onClose}>
      <div class="page-head">
        <h2 id="turn-changes-title">What turn {turn} changed</h2>
        <button type="button" onClick={() => dialog.current?.close()}>
          Close
        </button>
      </div>
      <Problem error={error} />
      {diff ? (
        <>
          <p class="muted">
            {diff.totalFiles === 1 ? "1 file" : `${count(diff.totalFiles)} files`}
            {diff.cut ? ` — the first ${count(diff.diff.length)} characters of the patch; \`cove agent diff\` prints all of it` : ""}
          </p>
          {files.map((file, index) => (
            <File key={index} file={file} />
          ))}
        </>
      ) : error ? null : (
        <p role="status">Loading the turn's changes…</p>
      )}
    </dialog>
  );
}

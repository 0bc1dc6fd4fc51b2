/**
 * A sandbox's files: a tree from /workspace (folders load when opened), a viewer for text and images, downloads,
 * and uploads by drag and drop (onto a folder, or anywhere on the tree for the folder last opened) or by picking.
 *
 * File bytes are fetched with the credential in a header and shown through blob: URLs, so no URL the page makes
 * carries a secret. A file is the sandbox's to write: text is shown as text, and an image (SVG included) is an
 * <img>, where nothing in it can run.
 */

import { useEffect, useState } from "preact/hooks";

import type { FileInfo } from "@cove/sdk/types.js";

import type { Api } from "../../api/client.js";
import { type Credentials, can } from "../../api/credentials.js";
import { listFiles, readFile, uploadFile } from "../../api/resources.js";
import { Problem } from "../../components/Problem.js";
import { useAction } from "../../lib/action.js";
import { bytes } from "../../lib/format.js";

const ROOT = "/workspace";
/** Larger files are offered for download, not shown. */
const VIEW_LIMIT = 1 << 20;
const IMAGE = /\.(png|jpe?g|gif|webp|avif|bmp|ico|svg)$/i;

type Listing = FileInfo[] | "loading" | Error;

function join(directory: string, name: string): string {
  return `${directory.replace(/\/+$/, "")}/${name}`;
}

async function download(api: Api, sandboxId: string, file: FileInfo): Promise<void> {
  const url = URL.createObjectURL(await readFile(api, sandboxId, file.path));
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = file.name;
  anchor.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function Viewer({ api, sandboxId, file }: { api: Api; sandboxId: string; file: FileInfo }) {
  const [content, setContent] = useState<{ text?: string; image?: string; binary?: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let image: string | undefined;
    let live = true;
    setContent(null);
    setError(null);
    if (file.size > VIEW_LIMIT) return;
    readFile(api, sandboxId, file.path).then(
      async (blob) => {
        if (!live) return;
        if (IMAGE.test(file.name)) {
          image = URL.createObjectURL(blob);
          return setContent({ image });
        }
        try {
          setContent({ text: new TextDecoder("utf-8", { fatal: true }).decode(await blob.arrayBuffer()) });
        } catch {
          setContent({ binary: true });
        }
      },
      (caught: unknown) => live && setError(caught),
    );
    return () => {
      live = false;
      if (image) URL.revokeObjectURL(image);
    };
  }, [api, sandboxId, file.path, file.modifiedAt]);

  return (
    <section class="viewer" aria-label={`File ${file.path}`}>
      <div class="viewer-head">
        <h2>
          <code>{file.path}</code>
        </h2>
        <span class="muted">{bytes(file.size)}</span>
        <button type="button" onClick={() => download(api, sandboxId, file).catch(setError)}>
          Download
        </button>
      </div>
      <Problem error={error} />
      {file.size > VIEW_LIMIT ? (
        <p class="muted">Too large to show here; download it instead.</p>
      ) : content?.image ? (
        <img src={content.image} alt={file.name} class="preview-image" />
      ) : content?.binary ? (
        <p class="muted">A binary file; download it to open it.</p>
      ) : content ? (
        <pre class="file-text" tabIndex={0}>
          {content.text}
        </pre>
      ) : null}
    </section>
  );
}

export function FilesTab({ api, credentials, sandboxId }: { api: Api; credentials: Credentials; sandboxId: string }) {
  const [listings, setListings] = useState(new Map<string, Listing>());
  const [open, setOpen] = useState(new Set([ROOT]));
  const [current, setCurrent] = useState(ROOT);
  const [selected, setSelected] = useState<FileInfo | null>(null);
  const [dropTarget, setDropTarget] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const uploading = useAction();
  const mayWrite = can(credentials, "files");

  const load = (directory: string) => {
    setListings((old) => new Map(old).set(directory, old.get(directory) instanceof Array ? old.get(directory)! : "loading"));
    listFiles(api, sandboxId, directory).then(
      (entries) => setListings((old) => new Map(old).set(directory, entries)),
      (caught: unknown) => setListings((old) => new Map(old).set(directory, caught instanceof Error ? caught : new Error(String(caught)))),
    );
  };
  useEffect(() => {
    setListings(new Map());
    load(ROOT);
  }, [api, sandboxId]);

  const toggle = (directory: string) => {
    const next = new Set(open);
    if (next.has(directory)) next.delete(directory);
    else {
      next.add(directory);
      load(directory);
    }
    setOpen(next);
    setCurrent(directory);
  };

  const upload = async (directory: string, files: File[]) => {
    const done = await uploading.run(async () => {
      for (const [index, file] of files.entries()) {
        setStatus(`Uploading ${file.name} (${index + 1} of ${files.length})…`);
        await uploadFile(api, sandboxId, join(directory, file.name), file);
      }
    });
    setStatus(done ? `Uploaded to ${directory}` : "");
    if (!open.has(directory)) setOpen(new Set(open).add(directory));
    load(directory);
  };

  const dropProps = (directory: string) =>
    mayWrite
      ? {
          onDragOver: (event: DragEvent) => {
            if (!event.dataTransfer?.types.includes("Files")) return;
            event.preventDefault();
            event.stopPropagation();
            setDropTarget(directory);
          },
          onDragLeave: () => setDropTarget(null),
          onDrop: (event: DragEvent) => {
            event.preventDefault();
            event.stopPropagation();
            setDropTarget(null);
            const files = [...(event.dataTransfer?.files ?? [])];
            if (files.length) void upload(directory, files);
          },
        }
      : {};

  const tree = (directory: string, depth: number) => {
    const listing = listings.get(directory);
    if (listing === undefined || listing === "loading") return <p class="muted indent">Loading…</p>;
    if (listing instanceof Error) return <Problem error={listing} />;
    if (!listing.length) return depth ? <p class="muted indent">empty</p> : <p class="muted">No files yet.</p>;
    return (
      <ul class="tree">
        {listing.map((entry) => {
          const path = entry.path || join(directory, entry.name);
          if (entry.type === "dir") {
            return (
              <li key={path} class={dropTarget === path ? "drop-target" : ""} {...dropProps(path)}>
                <button type="button" class="link" aria-expanded={open.has(path)} onClick={() => toggle(path)}>
                  <span aria-hidden="true">{open.has(path) ? "▾ " : "▸ "}</span>
                  {entry.name}/
                </button>
                {open.has(path) ? tree(path, depth + 1) : null}
              </li>
            );
          }
          return (
            <li key={path}>
              <button
                type="button"
                class="link"
                aria-current={selected?.path === path ? "true" : undefined}
                onClick={() => {
                  setSelected({ ...entry, path });
                  setCurrent(directory);
                }}
              >
                {entry.name}
              </button>
              <span class="muted"> {entry.type === "file" ? bytes(entry.size) : entry.type}</span>
            </li>
          );
        })}
      </ul>
    );
  };

  return (
    <div class="split">
      <section
        class={`files${dropTarget === current ? " drop-target" : ""}`}
        aria-label="Files"
        {...dropProps(current)}
      >
        <div class="files-head">
          <span>
            <code>{current}</code>
          </span>
          <button type="button" onClick={() => load(current)}>
            Refresh
          </button>
          {mayWrite ? (
            <label class="button">
              Upload files
              <input
                type="file"
                multiple
                class="sr-only"
                onChange={(event) => {
                  const files = [...(event.currentTarget.files ?? [])];
                  event.currentTarget.value = "";
                  if (files.length) void upload(current, files);
                }}
              />
            </label>
          ) : null}
        </div>
        {mayWrite ? <p class="muted hint">Drop files on a folder, or here for {current}.</p> : null}
        <p class="muted" role="status">
          {status}
        </p>
        <Problem error={uploading.error} />
        <div class="tree-root">{tree(ROOT, 0)}</div>
      </section>
      {selected ? <Viewer api={api} sandboxId={sandboxId} file={selected} /> : null}
    </div>
  );
}

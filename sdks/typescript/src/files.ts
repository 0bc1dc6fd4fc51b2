/**
 * Files in a sandbox (`src/cove/api/routes/files.py`). Relative paths are relative to `/workspace`; a path
 * that leaves `/workspace`, `/home/user` or `/tmp` is refused with `PathOutsideSandbox`.
 */

import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

import { ConnectionLost, CoveError } from "./errors.js";
import type { CoveClient } from "./transport.js";
import { type FileInfo, fileInfoFrom } from "./types.js";

/** Called as bytes arrive: the bytes so far, and the total when the server announced it. */
export type ProgressCallback = (done: number, total: number | null) => void;

/** What `files.write` takes: text (written as UTF-8), bytes, or chunks that are streamed as they come. */
export type FileData = string | Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

async function* chunksOf(data: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield* data;
}

/** Files in one sandbox: `sandbox.files`. */
export class Files {
  private readonly path: string;

  /** @internal */
  constructor(private readonly client: CoveClient, sandboxId: string) {
    this.path = `/v1/sandboxes/${sandboxId}/files`;
  }

  /**
   * A file's contents as bytes.
   *
   * @example
   * const bytes = await sandbox.files.read("data/out.bin");
   */
  async read(path: string): Promise<Uint8Array> {
    const response = await this.client.fetch("GET", this.path, { path });
    return new Uint8Array(await response.arrayBuffer());
  }

  /** A file's contents decoded as UTF-8 text. */
  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  /** A file's contents in chunks as they arrive — for files too large to hold in memory. */
  async *stream(path: string): AsyncIterable<Uint8Array> {
    const response = await this.client.fetch("GET", this.path, { path });
    if (!response.body) return;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) yield chunk;
  }

  /**
   * Download a file to a local path; resolves with its size. `destination` appears only once the whole file has
   * arrived (the bytes go to a hidden file beside it, renamed at the end): a failed download leaves nothing.
   *
   * @example
   * await sandbox.files.download("results/out.csv", "out.csv");
   */
  async download(path: string, destination: string, options: { onProgress?: ProgressCallback } = {}): Promise<number> {
    const response = await this.client.fetch("GET", this.path, { path });
    const length = response.headers.get("content-length");
    const total = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    const partial = join(dirname(destination), `.${basename(destination)}.${randomBytes(4).toString("hex")}.part`);
    const out = await open(partial, "wx");
    let size = 0;
    try {
      for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        size += chunk.length;
        options.onProgress?.(size, total);
      }
      await out.close();
      await rename(partial, destination);
    } catch (error) {
      await out.close().catch(() => undefined);
      await rm(partial, { force: true });
      if (error instanceof CoveError) throw error;
      throw new ConnectionLost(`download of ${path} from ${this.client.url} broke: ${String(error)}`, { cause: error });
    }
    return size;
  }

  /**
   * Write a file, creating its parent directories. Chunks given as an iterable are streamed, never
   * buffered whole.
   *
   * @example
   * await sandbox.files.write("hello.py", "print('hello')\n");
   * await sandbox.files.write("run.sh", "#!/bin/sh\necho hi\n", { mode: 0o755 });
   */
  async write(path: string, data: FileData, options: { mode?: number } = {}): Promise<FileInfo> {
    const raw = typeof data === "string" || data instanceof Uint8Array ? data : chunksOf(data);
    const response = await this.client.fetch("PUT", this.path, { path, mode: options.mode }, { raw });
    return fileInfoFrom(await response.json() as Record<string, unknown>);
  }

  /** The entries of a directory (default `/workspace`). */
  async list(path = "/workspace"): Promise<FileInfo[]> {
    const reply = await this.client.request<{ entries: Record<string, unknown>[] }>("GET", `${this.path}/list`, {
      query: { path },
    });
    return reply.entries.map(fileInfoFrom);
  }

  /** One file's metadata; throws `FileNotFound` when there is none. */
  async stat(path: string): Promise<FileInfo> {
    return fileInfoFrom(await this.client.request("GET", `${this.path}/stat`, { query: { path } }));
  }

  /** Whether anything exists at `path`. */
  async exists(path: string): Promise<boolean> {
    const reply = await this.client.request<{ exists: boolean }>("GET", `${this.path}/exists`, { query: { path } });
    return reply.exists;
  }

  /** Make a directory (and, by default, its parents). */
  async mkdir(path: string, options: { parents?: boolean } = {}): Promise<FileInfo> {
    const body = { path, parents: options.parents ?? true };
    return fileInfoFrom(await this.client.request("POST", `${this.path}/mkdir`, { json: body }));
  }

  /** Remove a file, or a directory (non-empty ones only with `recursive`). */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.client.fetch("DELETE", this.path, { path, recursive: options.recursive ?? false });
  }

  /** Move or rename a file or directory; returns the moved entry. */
  async rename(source: string, destination: string): Promise<FileInfo> {
    return fileInfoFrom(
      await this.client.request("POST", `${this.path}/rename`, { json: { source, destination } }),
    );
  }
}

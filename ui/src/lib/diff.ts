/**
 * A unified diff as `git diff` writes it (what `GET …/turns/{n}/diff` pages out), read into files of side-by-side
 * rows: context on both sides, a run of removed lines beside the run of added lines that follows it. Every line
 * is the sandbox's to write, so nothing here trusts a header: a malformed line is kept as a note, never dropped
 * silently, and line numbers come from the hunk headers only.
 */

export interface Side {
  /** The line's number on its side (old on the left, new on the right). */
  number: number;
  text: string;
}

export interface Row {
  kind: "context" | "change" | "hunk" | "note";
  left: Side | null;
  right: Side | null;
  /** For "hunk" (its header) and "note" rows (`\ No newline at end of file`, an unexpected line). */
  text?: string;
}

export interface DiffFile {
  /** The path before the turn (null for an added file) and after it (null for a deleted one). */
  oldPath: string | null;
  newPath: string | null;
  /** Lines of the file's header that say more than the paths: `new file mode`, `rename from`, `Binary files…`. */
  meta: string[];
  rows: Row[];
}

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/** `a/path` or `b/path` of a `---`/`+++` line; `/dev/null` is no file. */
function pathOf(rest: string): string | null {
  const path = rest.replace(/\t.*$/, "");
  if (path === "/dev/null") return null;
  return path.startsWith("a/") || path.startsWith("b/") ? path.slice(2) : path;
}

/** The two paths of a `diff --git a/x b/y` line (paths with spaces split at " b/"). */
function gitPaths(rest: string): [string, string] {
  const at = rest.indexOf(" b/");
  if (!rest.startsWith("a/") || at < 0) return [rest, rest];
  return [rest.slice(2, at), rest.slice(at + 3)];
}

export function parseDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  let file: DiffFile | null = null;
  let oldLine = 0;
  let newLine = 0;
  let inHunk = false;
  // The removed lines of the current run, waiting for the added lines they sit beside.
  let removed: Side[] = [];
  let added: Side[] = [];

  const flush = () => {
    if (!file) return;
    for (let i = 0; i < Math.max(removed.length, added.length); i++) {
      file.rows.push({ kind: "change", left: removed[i] ?? null, right: added[i] ?? null });
    }
    removed = [];
    added = [];
  };

  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (const line of lines) {
    if (line.startsWith("diff --git ")) {
      flush();
      const [oldPath, newPath] = gitPaths(line.slice("diff --git ".length));
      file = { oldPath, newPath, meta: [], rows: [] };
      files.push(file);
      inHunk = false;
      continue;
    }
    if (!file) continue; // anything before the first file (none from Cove)
    const hunk = HUNK.exec(line);
    if (hunk) {
      flush();
      oldLine = Number(hunk[1]);
      newLine = Number(hunk[2]);
      inHunk = true;
      file.rows.push({ kind: "hunk", left: null, right: null, text: line });
      continue;
    }
    if (!inHunk) {
      if (line.startsWith("--- ")) file.oldPath = pathOf(line.slice(4));
      else if (line.startsWith("+++ ")) file.newPath = pathOf(line.slice(4));
      else if (!line.startsWith("index ")) file.meta.push(line);
      if (line.startsWith("new file mode")) file.oldPath = null;
      if (line.startsWith("deleted file mode")) file.newPath = null;
      continue;
    }
    const mark = line[0];
    const body = line.slice(1);
    if (mark === "-") {
      if (added.length) flush(); // a removal after additions starts a new run
      removed.push({ number: oldLine++, text: body });
    } else if (mark === "+") {
      added.push({ number: newLine++, text: body });
    } else if (mark === " " || line === "") {
      flush();
      file.rows.push({ kind: "context", left: { number: oldLine++, text: body }, right: { number: newLine++, text: body } });
    } else {
      flush();
      file.rows.push({ kind: "note", left: null, right: null, text: line });
    }
  }
  flush();
  return files;
}

/** A file's name as a heading shows it: `old → new` for a rename. */
export function fileTitle(file: DiffFile): string {
  if (file.oldPath && file.newPath && file.oldPath !== file.newPath) return `${file.oldPath} → ${file.newPath}`;
  return file.newPath ?? file.oldPath ?? "?";
}

/// <reference types="node" />
// A turn's unified diff read into side-by-side rows, with diffs as git writes them and as a sandbox may forge them.

import assert from "node:assert/strict";
import { test } from "node:test";

import { fileTitle, parseDiff } from "../src/lib/diff.js";

const EDIT = `diff --git a/fib.py b/fib.py
index 3b18e51..a9c7f2d 100644
--- a/fib.py
+++ b/fib.py
@@ -1,4 +1,5 @@
 def fib(n):
-    if n < 2:
-        return n
+    if n <= 1:
+        return 1
+    # the rest
     return fib(n - 1) + fib(n - 2)
-print(fib(10))
\\ No newline at end of file
`;

test("a run of removed lines sits beside the added lines that follow it, numbered on each side", () => {
  const [file] = parseDiff(EDIT);
  assert.ok(file);
  assert.equal(fileTitle(file), "fib.py");
  assert.deepEqual(file.meta, []);
  const rows = file.rows.map((row) => [row.kind, row.left?.number ?? null, row.left?.text ?? null, row.right?.number ?? null, row.right?.text ?? null]);
  assert.deepEqual(rows, [
    ["hunk", null, null, null, null],
    ["context", 1, "def fib(n):", 1, "def fib(n):"],
    ["change", 2, "    if n < 2:", 2, "    if n <= 1:"],
    ["change", 3, "        return n", 3, "        return 1"],
    ["change", null, null, 4, "    # the rest"],
    ["context", 4, "    return fib(n - 1) + fib(n - 2)", 5, "    return fib(n - 1) + fib(n - 2)"],
    ["change", 5, "print(fib(10))", null, null],
    ["note", null, null, null, null],
  ]);
  assert.equal(file.rows.at(-1)?.text, "\\ No newline at end of file");
});

test("added, deleted, renamed and binary files say so, each file on its own", () => {
  const files = parseDiff(
    [
      "diff --git a/new.txt b/new.txt",
      "new file mode 100644",
      "--- /dev/null",
      "+++ b/new.txt",
      "@@ -0,0 +1 @@",
      "+hello",
      "diff --git a/old.txt b/old.txt",
      "deleted file mode 100644",
      "--- a/old.txt",
      "+++ /dev/null",
      "@@ -1 +0,0 @@",
      "-bye",
      "diff --git a/README b/docs/read me.md",
      "similarity index 100%",
      "rename from README",
      "rename to docs/read me.md",
      "diff --git a/logo.png b/logo.png",
      "new file mode 100644",
      "Binary files /dev/null and b/logo.png differ",
    ].join("\n"),
  );
  assert.deepEqual(
    files.map((file) => [file.oldPath, file.newPath, fileTitle(file), file.rows.length]),
    [
      [null, "new.txt", "new.txt", 2],
      ["old.txt", null, "old.txt", 2],
      ["README", "docs/read me.md", "README → docs/read me.md", 0],
      [null, "logo.png", "logo.png", 0],
    ],
  );
  assert.deepEqual(files[2]?.meta, ["similarity index 100%", "rename from README", "rename to docs/read me.md"]);
  assert.deepEqual(files[3]?.meta, ["new file mode 100644", "Binary files /dev/null and b/logo.png differ"]);
});

test("what a sandbox forges is kept as text: lines before any file are skipped, odd lines in a hunk become notes", () => {
  const files = parseDiff("<script>alert(1)</script>\ndiff --git a/x b/x\n@@ -1 +1 @@\n?odd\n-a\n+b\n@@ nonsense\n");
  assert.equal(files.length, 1);
  const kinds = files[0]!.rows.map((row) => row.kind);
  assert.deepEqual(kinds, ["hunk", "note", "change", "note"]);
  assert.equal(parseDiff("").length, 0);
});

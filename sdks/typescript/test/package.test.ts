// The package as a user installs it from this repository: `npm pack`, then `npm install <tarball>`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = fileURLToPath(new URL("../..", import.meta.url));

test("npm pack builds the SDK first, and its tarball installs and imports", { timeout: 300_000 }, () => {
  const manifest = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")) as { scripts: Record<string, string> };
  assert.equal(manifest.scripts.prepack, "npm run build"); // so a fresh clone's `npm pack` ships dist/
  const project = mkdtempSync(join(tmpdir(), "cove-consumer-"));
  try {
    // dist/ is built already (by `npm test`); rebuilding it here would rewrite files other tests are running.
    execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", project], { cwd: PACKAGE, stdio: "pipe" });
    const [tarball] = readdirSync(project).filter((name) => name.endsWith(".tgz"));
    assert.ok(tarball);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", `./${tarball}`], {
      cwd: project,
      stdio: "pipe",
    });
    const imported = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", 'const m = await import("@cove/sdk"); console.log(typeof m.Sandbox.create, m.errorFrom(404, "x", "y").name)'],
      { cwd: project },
    );
    assert.equal(imported.toString().trim(), "function NotFound");
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

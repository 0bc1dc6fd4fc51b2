#!/usr/bin/env node
// Builds the Inspector into ../src/cove/inspector/, where `cove serve` finds it (cove/api/inspector.py):
// index.html, and under assets/ the bundles with content hashes in their names, each with a gzip and a brotli
// twin so the server sends compressed bytes without compressing on every request.
// `node build.mjs --tests` bundles test/*.test.ts for `node --test` instead; COVE_UI_DEBUG=1 leaves the bundle
// unminified, for reading a profile.

import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "cove", "inspector");
const assets = join(out, "assets");
const PREFIX = "/ui/";

/** Options both builds share: the SDK's modules by their package name (tsconfig paths), strict ES2022. */
const common = { bundle: true, target: "es2022", tsconfig: join(here, "tsconfig.json"), logLevel: "warning" };

async function buildTests() {
  const dir = join(here, "test");
  const entryPoints = readdirSync(dir).filter((name) => name.endsWith(".test.ts")).map((name) => join(dir, name));
  rmSync(join(here, "dist-test"), { recursive: true, force: true });
  await esbuild.build({
    ...common,
    entryPoints,
    outdir: join(here, "dist-test"),
    outExtension: { ".js": ".mjs" },
    platform: "node",
    format: "esm",
    packages: "external",
  });
}

/** A name with the first 8 hex digits of its content's hash, as esbuild names the bundles. */
function hashed(name, content) {
  const digest = createHash("sha256").update(content).digest("hex").slice(0, 8);
  const dot = name.lastIndexOf(".");
  return `${name.slice(0, dot)}-${digest}${name.slice(dot)}`;
}

function compressAll(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      compressAll(path);
      continue;
    }
    const content = readFileSync(path);
    writeFileSync(`${path}.gz`, gzipSync(content, { level: 9 }));
    writeFileSync(
      `${path}.br`,
      brotliCompressSync(content, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
    );
  }
}

async function buildPage() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(assets, { recursive: true });

  // xterm.js's stylesheet is loaded with the terminal, not with the page: a hashed copy, named to the bundle.
  const xtermCss = readFileSync(join(here, "node_modules", "@xterm", "xterm", "css", "xterm.css"));
  const xtermCssName = hashed("xterm.css", xtermCss);
  writeFileSync(join(assets, xtermCssName), xtermCss);

  const result = await esbuild.build({
    ...common,
    entryPoints: { main: join(here, "src", "main.tsx") },
    outdir: assets,
    format: "esm",
    splitting: true, // the terminal (xterm.js) is a chunk of its own, fetched when a terminal opens
    minify: !process.env.COVE_UI_DEBUG,
    entryNames: "[name]-[hash]",
    chunkNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    metafile: true,
    legalComments: "none",
    define: { __XTERM_CSS__: JSON.stringify(PREFIX + "assets/" + xtermCssName) },
  });

  const [mainJs, main] = Object.entries(result.metafile.outputs).find(([, meta]) => meta.entryPoint);
  const mainCss = main.cssBundle;
  const url = (file) => PREFIX + relative(out, join(here, file)).split("\\").join("/");
  const icon = readFileSync(join(here, "src", "icon.svg"));
  const iconName = hashed("icon.svg", icon);
  writeFileSync(join(assets, iconName), icon);

  const template = readFileSync(join(here, "index.html"), "utf8");
  const html = template
    .replace("%ICON%", PREFIX + "assets/" + iconName)
    .replace("%CSS%", url(mainCss))
    .replace("%JS%", url(mainJs));
  writeFileSync(join(out, "index.html"), html);
  compressAll(out);

  // What a first visit downloads: the page, its script and its stylesheet (the terminal chunk comes later).
  const firstLoad = ["index.html", relative(out, join(here, mainJs)), relative(out, join(here, mainCss))];
  let raw = 0;
  let gz = 0;
  let br = 0;
  for (const name of firstLoad) {
    raw += statSync(join(out, name)).size;
    gz += statSync(join(out, `${name}.gz`)).size;
    br += statSync(join(out, `${name}.br`)).size;
  }
  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  console.log(`inspector: first load ${kb(raw)} (gzip ${kb(gz)}, brotli ${kb(br)}) -> ${relative(process.cwd(), out)}`);
}

if (process.argv.includes("--tests")) await buildTests();
else await buildPage();

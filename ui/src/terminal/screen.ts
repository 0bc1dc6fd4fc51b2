/**
 * xterm.js on a terminal's stream: a chunk of its own, loaded when a terminal opens (the first load of the page
 * stays small), with xterm's stylesheet beside it.
 *
 * The page's Content-Security-Policy refuses inline `<style>` blocks, and xterm.js writes its colours and cell
 * sizes into `<style>` elements it makes. While this chunk is loaded, a `<style>` the page's scripts make is an
 * inert element whose text goes into a constructed stylesheet instead (CSSOM, which the policy allows): the same
 * rules, and nothing sandbox-written can reach them (only this bundle's own scripts make elements).
 */

import { FitAddon } from "@xterm/addon-fit";
import { type ITheme, Terminal } from "@xterm/xterm";

import type { TerminalStream } from "../api/terminal.js";

declare const __XTERM_CSS__: string;

let stylesheet: Promise<void> | null = null;

function loadStylesheet(): Promise<void> {
  stylesheet ??= new Promise((resolve, reject) => {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = __XTERM_CSS__;
    link.onload = () => resolve();
    link.onerror = () => reject(new Error("the terminal's stylesheet did not load"));
    document.head.append(link);
  });
  return stylesheet;
}

function constructedStyle(element: HTMLElement): HTMLElement {
  const sheet = new CSSStyleSheet();
  let text = "";
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  Object.defineProperty(element, "textContent", {
    get: () => text,
    set: (value: unknown) => {
      text = String(value ?? "");
      sheet.replaceSync(text);
    },
  });
  const remove = element.remove.bind(element);
  element.remove = () => {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((adopted) => adopted !== sheet);
    remove();
  };
  return element;
}

let shimmed = false;

function constructStyles(): void {
  if (shimmed) return;
  shimmed = true;
  const create = document.createElement.bind(document) as (tag: string, options?: ElementCreationOptions) => HTMLElement;
  document.createElement = ((tag: string, options?: ElementCreationOptions) => {
    if (tag.toLowerCase() !== "style") return create(tag, options);
    const element = create("cove-style");
    element.hidden = true;
    return constructedStyle(element);
  }) as typeof document.createElement;
}

/** The page's colours, as the system's light or dark scheme has them now. */
function theme(element: HTMLElement): ITheme {
  const style = getComputedStyle(element);
  const background = style.getPropertyValue("--code-bg").trim() || "#000000";
  const foreground = style.getPropertyValue("--fg").trim() || "#ffffff";
  return { background, foreground, cursor: foreground, selectionBackground: style.getPropertyValue("--border").trim() };
}

/** Draw `stream` in `element` and send what is typed there (xterm's input, named `keysLabel`); the returned
 * function takes it all down. */
export async function openScreen(element: HTMLElement, stream: TerminalStream, keysLabel: string): Promise<() => void> {
  constructStyles();
  await loadStylesheet();
  const terminal = new Terminal({ fontFamily: getComputedStyle(element).getPropertyValue("--mono"), fontSize: 14, theme: theme(element) });
  const fit = new FitAddon();
  terminal.loadAddon(fit);
  terminal.open(element);
  terminal.textarea?.setAttribute("aria-label", keysLabel);
  fit.fit();

  stream.onOutput = (bytes) => terminal.write(bytes);
  const typed = terminal.onData((keys) => stream.type(keys));
  const resized = terminal.onResize(({ cols, rows }) => stream.resize(cols, rows));
  stream.resize(terminal.cols, terminal.rows);
  stream.open();

  const scheme = matchMedia("(prefers-color-scheme: dark)");
  const recolour = () => (terminal.options.theme = theme(element));
  scheme.addEventListener("change", recolour);
  const observer = new ResizeObserver(() => fit.fit());
  observer.observe(element);
  return () => {
    observer.disconnect();
    scheme.removeEventListener("change", recolour);
    typed.dispose();
    resized.dispose();
    stream.close();
    terminal.dispose();
  };
}

/**
 * The page's views are paths under /ui/ (so a link to a session is a plain URL to share or bookmark); the server
 * answers every one of them with the same page, and this module picks the view.
 */

import { useEffect, useState } from "preact/hooks";

export const PREFIX = "/ui";

export type SandboxTab = "sessions" | "processes" | "terminal" | "files" | "checkpoints" | "ports";
export const SANDBOX_TABS: readonly SandboxTab[] = ["sessions", "processes", "terminal", "files", "checkpoints", "ports"];

export type Route =
  | { view: "sandboxes" }
  | { view: "sandbox"; sandboxId: string; tab: SandboxTab }
  | { view: "session"; sandboxId: string; sessionId: string }
  | { view: "missing"; path: string };

export function parse(pathname: string): Route {
  const rest = pathname.startsWith(PREFIX) ? pathname.slice(PREFIX.length) : pathname;
  const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "sandboxes")) return { view: "sandboxes" };
  if (parts[0] === "sandboxes" && parts[1]) {
    const sandboxId = parts[1];
    if (parts.length === 2) return { view: "sandbox", sandboxId, tab: "sessions" };
    if (parts[2] === "sessions" && parts[3] && parts.length === 4) return { view: "session", sandboxId, sessionId: parts[3] };
    const tab = SANDBOX_TABS.find((name) => name === parts[2]);
    if (tab && parts.length === 3) return { view: "sandbox", sandboxId, tab };
  }
  return { view: "missing", path: pathname };
}

export function href(route: Route): string {
  switch (route.view) {
    case "sandboxes":
      return `${PREFIX}/`;
    case "sandbox":
      return `${PREFIX}/sandboxes/${encodeURIComponent(route.sandboxId)}${route.tab === "sessions" ? "" : `/${route.tab}`}`;
    case "session":
      return `${PREFIX}/sandboxes/${encodeURIComponent(route.sandboxId)}/sessions/${encodeURIComponent(route.sessionId)}`;
    case "missing":
      return route.path;
  }
}

const listeners = new Set<() => void>();

export function navigate(path: string): void {
  if (path === location.pathname + location.search) return;
  history.pushState(null, "", path);
  for (const listener of listeners) listener();
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parse(location.pathname));
    listeners.add(update);
    addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      removeEventListener("popstate", update);
    };
  }, []);
  return route;
}

/** A click on an in-page link changes the view without loading the page again (modified clicks open tabs). */
export function followLink(event: MouseEvent): void {
  const anchor = (event.target as Element | null)?.closest?.("a");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || anchor.target) return;
  if (anchor.getAttribute("href")?.startsWith("#")) return; // a jump within the view
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(PREFIX)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

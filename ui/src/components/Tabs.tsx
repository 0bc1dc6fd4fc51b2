/**
 * Tabs that are links (each tab is a path, so it can be shared and the back button works), with the ARIA tabs
 * pattern: one tab in the Tab order, the arrow keys (and Home, End) move between them.
 */

import type { ComponentChildren } from "preact";

import { navigate } from "../lib/router.js";

export interface Tab {
  id: string;
  label: string;
  href: string;
}

export function Tabs(props: { label: string; tabs: Tab[]; selected: string; children: ComponentChildren }) {
  const { tabs, selected } = props;
  const move = (event: KeyboardEvent, index: number) => {
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const tab = tabs[(next + tabs.length) % tabs.length]!;
    navigate(tab.href);
    requestAnimationFrame(() => document.getElementById(`tab-${tab.id}`)?.focus());
  };
  return (
    <>
      <div class="tabs" role="tablist" aria-label={props.label}>
        {tabs.map((tab, index) => (
          <a
            key={tab.id}
            id={`tab-${tab.id}`}
            role="tab"
            href={tab.href}
            aria-selected={tab.id === selected}
            aria-controls="tab-panel"
            tabIndex={tab.id === selected ? 0 : -1}
            onKeyDown={(event) => move(event, index)}
          >
            {tab.label}
          </a>
        ))}
      </div>
      <div id="tab-panel" role="tabpanel" aria-labelledby={`tab-${selected}`} class="tab-panel">
        {props.children}
      </div>
    </>
  );
}

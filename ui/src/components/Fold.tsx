/**
 * A fold (`<details>`) whose open state outlives its element: rows of the event list are dropped when they
 * scroll away and drawn again when they come back, and what the user opened (or closed) stays so. A closed fold
 * holds no content in the page, so a long tool result costs nothing until it is opened.
 */

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";

const remembered = new Map<string, boolean>();

export function Fold(props: { id: string; summary: ComponentChildren; open?: boolean; class?: string; children: ComponentChildren }) {
  const [open, setOpen] = useState(() => remembered.get(props.id) ?? props.open ?? false);
  return (
    <details
      class={props.class}
      open={open}
      onToggle={(event) => {
        const now = (event.currentTarget as HTMLDetailsElement).open;
        remembered.set(props.id, now);
        setOpen(now);
      }}
    >
      <summary>{props.summary}</summary>
      {open ? props.children : null}
    </details>
  );
}

/**
 * A list of programs running (or run) in a sandbox — background processes, terminals — newest first: each one
 * picked to watch, and killed while it runs, where the credential may.
 */

import { age } from "../lib/format.js";

export interface Program {
  id: string;
  command: string[];
  running: boolean;
  exitCode: number | null;
  /** Unix time. */
  startedAt: number;
}

interface Props {
  label: string;
  programs: readonly Program[];
  selected: string | null;
  /** Absent: the list is only read (the credential may not watch these). */
  onSelect?: (id: string) => void;
  /** Absent: nothing to kill with. */
  onKill?: (id: string) => void;
  busy: boolean;
}

export function Programs({ label, programs, selected, onSelect, onKill, busy }: Props) {
  return (
    <ul class="list" aria-label={label}>
      {[...programs].reverse().map((program) => {
        const name = (
          <>
            <code>{program.id}</code> {program.command.join(" ")}
          </>
        );
        return (
          <li key={program.id} class={program.id === selected ? "selected" : ""}>
            {onSelect ? (
              <button type="button" class="link" onClick={() => onSelect(program.id)} aria-pressed={program.id === selected}>
                {name}
              </button>
            ) : (
              <span>{name}</span>
            )}
            <span class="muted">
              {program.running ? "running" : `exited ${program.exitCode ?? ""}`} · {age(program.startedAt)}
            </span>
            {program.running && onKill ? (
              <button type="button" class="danger small" aria-label={`Kill ${program.id}`} disabled={busy} onClick={() => onKill(program.id)}>
                Kill
              </button>
            ) : null}
          </li>
        );
      })}
    </ul>
  );
}

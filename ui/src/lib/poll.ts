/**
 * Lists without an event stream of their own (sandboxes, processes, checkpoints, ports) stay live by asking again
 * every few seconds while the tab is visible, and at once after a change the page made (`reload`).
 */

import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
}

export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    setData(undefined);
    setError(undefined);
  }, deps);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (!document.hidden) {
        try {
          const value = await loadRef.current(controller.signal);
          if (controller.signal.aborted) return;
          setData(value);
          setError(undefined);
        } catch (caught) {
          if (controller.signal.aborted) return;
          setError(caught instanceof Error ? caught : new Error(String(caught)));
        }
      }
      timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [...deps, generation, intervalMs]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { data, error, reload };
}

/**
 * Something that changes, and a hook that redraws a component when it does — at most once per animation frame,
 * however many changes came in between: a session streaming a thousand events a second redraws sixty times.
 */

import { useEffect, useState } from "preact/hooks";

export class Observable {
  private readonly listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected notify(): void {
    for (const listener of this.listeners) listener();
  }
}

export function useObservable(observable: Observable): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    let frame = 0;
    const unsubscribe = observable.subscribe(() => {
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          setTick((tick) => tick + 1);
        });
      }
    });
    return () => {
      unsubscribe();
      cancelAnimationFrame(frame);
    };
  }, [observable]);
}

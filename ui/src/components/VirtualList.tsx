/**
 * A scrolling list that draws only the rows in view (and a screenful either side), so a session of 10,000
 * events costs what a session of 50 does. Rows have any height: each is measured once drawn (one
 * ResizeObserver for all) and estimated until then; spacers above and below stand in for the rows not drawn.
 *
 * While the list is scrolled to its end it follows new rows, as a terminal does; scrolled up, it stays where the
 * reader is (the browser's scroll anchoring keeps the rows in view still as rows above them are measured) and
 * offers a way back to the end. A row is drawn again only when its item's `rev` changes.
 */

import { Component, type VNode } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

export interface VirtualListProps<T> {
  items: readonly T[];
  keyOf: (item: T) => string;
  revOf: (item: T) => number;
  /** A guess at a row's height in pixels, until it is measured. */
  estimate: (item: T) => number;
  render: (item: T) => VNode;
  label: string;
  /** Called once rows are first on screen (after they were painted). */
  onFirstRows?: () => void;
}

/** How far beyond the visible part rows are drawn, in pixels. */
const OVERSCAN = 800;
/** Within this many pixels of the end, the list counts as scrolled to its end. */
const END_SLACK = 8;

interface RowProps {
  rowKey: string;
  rev: number;
  render: () => VNode;
  observer: ResizeObserver;
}

class Row extends Component<RowProps> {
  private element: HTMLDivElement | null = null;

  override shouldComponentUpdate(next: RowProps): boolean {
    return next.rev !== this.props.rev || next.rowKey !== this.props.rowKey;
  }

  private readonly ref = (element: HTMLDivElement | null) => {
    if (this.element) this.props.observer.unobserve(this.element);
    this.element = element;
    if (element) this.props.observer.observe(element);
  };

  override render() {
    return (
      <div class="row" data-key={this.props.rowKey} ref={this.ref}>
        {this.props.render()}
      </div>
    );
  }
}

export function VirtualList<T>(props: VirtualListProps<T>) {
  const container = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const follow = useRef(true);
  const [following, setFollowing] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(0);
  const [, setMeasured] = useState(0);
  const firstRows = useRef(false);

  const [observer] = useState(
    () =>
      new ResizeObserver((entries) => {
        let changed = false;
        for (const entry of entries) {
          const element = entry.target as HTMLElement;
          const key = element.dataset.key;
          const height = entry.borderBoxSize[0]?.blockSize ?? element.getBoundingClientRect().height;
          if (key !== undefined && height > 0 && heights.current.get(key) !== height) {
            heights.current.set(key, height);
            changed = true;
          }
        }
        if (changed) setMeasured((n) => n + 1);
      }),
  );
  useEffect(() => () => observer.disconnect(), [observer]);

  useEffect(() => {
    const element = container.current!;
    const sizes = new ResizeObserver(() => setViewport(element.clientHeight));
    sizes.observe(element);
    return () => sizes.disconnect();
  }, []);

  const { items, keyOf, estimate } = props;
  const tops = new Array<number>(items.length);
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    tops[i] = total;
    const item = items[i]!;
    total += heights.current.get(keyOf(item)) ?? estimate(item);
  }
  const height = viewport || 600;
  const top = follow.current ? Math.max(0, total - height) : scrollTop;
  let first = 0;
  let low = 0;
  let high = items.length - 1;
  while (low <= high) {
    // the last row starting above the drawn region
    const middle = (low + high) >> 1;
    if (tops[middle]! <= top - OVERSCAN) {
      first = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  let last = first;
  while (last < items.length && tops[last]! < top + height + OVERSCAN) last++;
  const drawn = items.slice(first, last);
  const above = items.length ? tops[first]! : 0;
  const below = last < items.length ? total - tops[last]! : 0;

  useLayoutEffect(() => {
    const element = container.current!;
    if (follow.current) element.scrollTop = element.scrollHeight;
    if (drawn.length && !firstRows.current && props.onFirstRows) {
      firstRows.current = true;
      requestAnimationFrame(() => props.onFirstRows?.());
    }
  });

  const onScroll = () => {
    const element = container.current!;
    const atEnd = element.scrollHeight - element.scrollTop - element.clientHeight <= END_SLACK;
    // Following, the window is computed from the end: the scroll the list made itself changes nothing.
    if (atEnd && follow.current) return;
    follow.current = atEnd;
    setFollowing(atEnd);
    setScrollTop(element.scrollTop);
  };

  const toEnd = () => {
    follow.current = true;
    setFollowing(true);
    const element = container.current!;
    element.scrollTop = element.scrollHeight;
  };

  return (
    <div class="virtual">
      <div
        class="virtual-scroll"
        ref={container}
        onScroll={onScroll}
        role="log"
        aria-live="off"
        aria-label={props.label}
        tabIndex={0}
      >
        <div class="spacer" style={{ height: `${above}px` }} />
        {drawn.map((item) => {
          const key = keyOf(item);
          return <Row key={key} rowKey={key} rev={props.revOf(item)} render={() => props.render(item)} observer={observer} />;
        })}
        <div class="spacer" style={{ height: `${below}px` }} />
      </div>
      {following ? null : (
        <button type="button" class="to-end" onClick={toEnd}>
          Jump to latest
        </button>
      )}
    </div>
  );
}

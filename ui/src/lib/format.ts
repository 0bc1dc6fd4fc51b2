/** How numbers, times and sizes read on the page. */

export function age(seconds: number, now = Date.now() / 1000): string {
  const s = Math.max(0, Math.floor(now - seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function cost(usd: number): string {
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

// One formatter for every count: toLocaleString builds a new one per call, which shows in a streaming session.
const COUNT = new Intl.NumberFormat("en-US");

export function count(n: number): string {
  return COUNT.format(n);
}

export function clock(seconds: number): string {
  return new Date(seconds * 1000).toLocaleString();
}

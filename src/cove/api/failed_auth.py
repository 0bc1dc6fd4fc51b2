"""Failed authentications per client address: past ``per_minute`` in the last minute, the address is refused
(429 ``rate_limited`` with ``Retry-After``) until the oldest of them is a minute old.

While refused, an address's credentials are not looked at, good or bad: a guess then tells nothing. Behind a
reverse proxy every client has the proxy's address (Cove trusts no ``X-Forwarded-For``), so they share one
budget; the proxy should limit by the real address itself.
"""

from __future__ import annotations

import collections
import math
import time

WINDOW_S = 60.0
MAX_ADDRESSES = 10_000  # the addresses tracked at once; the least recently failed are forgotten first


class FailedAuth:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until ``address`` may try again, or None when it may now."""
        failures = self._failures.get(address or "")
        if failures is None:
            return None
        now = time.monotonic()
        while failures and failures[0] <= now - WINDOW_S:
            failures.popleft()
        if not failures:
            del self._failures[address or ""]
            return None
        if len(failures) < self.per_minute:
            return None
        return max(1, math.ceil(failures[0] + WINDOW_S - now))

    def failed(self, address: str | None) -> None:
        key = address or ""
        failures = self._failures.pop(key, None) or collections.deque(maxlen=self.per_minute)
        failures.append(time.monotonic())
        self._failures[key] = failures
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)

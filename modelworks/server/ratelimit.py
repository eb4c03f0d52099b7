"""Failed authentication attempts, counted per client address.

A client whose tokens were refused ``max_failures`` times within ``window_s`` seconds gets 429
with ``Retry-After`` for each further refused token until the oldest failure leaves the window.
A valid token is never refused here: the counter only turns a 401 into a 429, so a user behind
the same address (a proxy, a shared machine) keeps working while a guesser is slowed down. The
address is the one the server sees (uvicorn trusts ``X-Forwarded-For`` only from a proxy on
127.0.0.1). State is per server process and bounded: at most ``max_clients`` addresses are
tracked, the stalest dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

from modelworks.platform.errors import TooManyRequests


class AuthFailures:
    """The sliding window of refused authentications per client address."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = 10_000) -> None:
        self.max_failures, self.window_s, self.max_clients = max_failures, window_s, max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def refused(self, address: str, now: float | None = None) -> None:
        """Count one refused token from ``address``; `TooManyRequests` once it is over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._failures.pop(address, None) or deque()
            while times and times[0] <= now - self.window_s:
                times.popleft()
            times.append(now)
            if len(times) > self.max_failures + 1:  # what decides the answer is the newest max_failures + 1
                times.popleft()
            self._failures[address] = times  # most recent last
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            if len(times) <= self.max_failures:
                return
            retry_after = max(1, math.ceil(times[-self.max_failures] + self.window_s - now))  # until one more fits
        raise TooManyRequests(f"too many refused tokens from this address; retry in {retry_after} s", retry_after)

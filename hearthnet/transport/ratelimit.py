"""Soft and hard rate limits per (peer, capability) and per peer in total (token buckets).

Above the soft rate a request is still served but counted (and the response says
so in `X-HN-Rate: soft`); above the hard rate it is refused with `rate_limited`
and a Retry-After. Rates come from config (the reference's constants are the
defaults).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RateCheck:
    allowed: bool
    soft_exceeded: bool
    retry_after_ms: int


class _Bucket:
    __slots__ = ("rate", "tokens", "stamp")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate  # a one-second burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        # `now` is read before a new bucket's stamp: never let the clock run backwards into a debt
        # (a fresh bucket of rate 1 refused its very first request).
        self.tokens = min(self.rate, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(now, self.stamp)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_ms(self) -> int:
        return max(1, int((1.0 - self.tokens) / self.rate * 1000))


class RateLimiter:
    def __init__(self, soft_per_cap: float, hard_per_cap: float, soft_total: float, hard_total: float, max_keys: int = 100000) -> None:
        self.limits = (soft_per_cap, hard_per_cap, soft_total, hard_total)
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def _bucket(self, key: tuple[str, str, str], rate: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:  # memory stays bounded under many peers
                self._buckets.clear()
            b = self._buckets[key] = _Bucket(rate)
        return b

    def check(self, peer: str, capability: str) -> RateCheck:
        soft_cap, hard_cap, soft_tot, hard_tot = self.limits
        now = time.monotonic()
        with self._lock:
            hard = [self._bucket(("hard", peer, capability), hard_cap), self._bucket(("hard", peer, "*"), hard_tot)]
            for b in hard:
                if not b.take(now):
                    return RateCheck(False, True, b.wait_ms())
            soft_ok = self._bucket(("soft", peer, capability), soft_cap).take(now) & self._bucket(("soft", peer, "*"), soft_tot).take(now)
            return RateCheck(True, not soft_ok, 0)


__all__ = ["RateCheck", "RateLimiter"]

"""Per-user rate limit on questions: a token bucket per user, ``burst`` at once, then ``per_minute``.

Each question (a mention, a DM, a message in an answer channel, ``/ask``) takes one token from its asker's
bucket before any retrieval runs; the bucket refills continuously at ``per_minute / 60`` tokens a second up
to ``burst``. One user's burst therefore costs the others nothing: their buckets are their own.

The table is bounded. A bucket that has been idle long enough to be full again is the same as no bucket at
all, so it is dropped; and past ``max_users`` buckets the least recently used go first (a user evicted
while not yet full simply starts again with a full bucket: the limit loosens, memory never grows).

Used from the event loop only, so it needs no lock.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_USERS = 10_000


@dataclass(frozen=True)
class Verdict:
    """Whether a question may run; if not, when the next one may (seconds) and whether to say so now."""

    allowed: bool
    retry_after: float = 0.0
    notify: bool = False  # the first refusal since the user's last allowed question


class _Bucket:
    __slots__ = ("notified", "tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated
        self.notified = False


class RateLimiter:
    """Token buckets keyed by user id. ``take(user)`` spends one token or says how long to wait."""

    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        max_users: int = MAX_USERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        if not isinstance(per_minute, int | float) or not per_minute > 0 or math.isinf(per_minute):
            raise ValueError(f"per_minute must be a positive number, got {per_minute!r}")
        if isinstance(max_users, bool) or not isinstance(max_users, int) or max_users < 1:
            raise ValueError(f"max_users must be an int >= 1, got {max_users!r}")
        self.burst = burst
        self.per_minute = float(per_minute)
        self.rate = self.per_minute / 60.0  # tokens per second
        self.max_users = max_users
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def refill_s(self) -> float:
        """How long an empty bucket takes to be full again (and an idle one to be forgotten)."""
        return self.burst / self.rate

    def take(self, user_id: int) -> Verdict:
        now = self._clock()
        self._evict(now)
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(float(self.burst), now)
        else:
            self._buckets.move_to_end(user_id)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.notified = False
            return Verdict(True)
        notify = not bucket.notified
        bucket.notified = True
        return Verdict(False, retry_after=(1.0 - bucket.tokens) / self.rate, notify=notify)

    def _evict(self, now: float) -> None:
        """Drop buckets idle long enough to be full again, then the oldest while over ``max_users``."""
        buckets, idle_after = self._buckets, self.refill_s
        while buckets:
            user_id, oldest = next(iter(buckets.items()))
            if now - oldest.updated < idle_after and len(buckets) < self.max_users:
                break
            del buckets[user_id]


def wait_text(seconds: float) -> str:
    """``seconds`` as people say it: "3 s", "2 min", "1 min 30 s"."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def slow_down(verdict: Verdict, limiter: RateLimiter) -> str:
    """The polite reply to a question over the limit: when the user can ask again, and what the limit is."""
    per_minute = f"{limiter.per_minute:g}"
    return (
        f"⏳ You're asking faster than I can keep up with. You can ask again in {wait_text(verdict.retry_after)} "
        f"(up to {limiter.burst} questions at once, then {per_minute} a minute)."
    )

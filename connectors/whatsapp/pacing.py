"""WhatsApp's sending limits, kept by the outbox sender so that Meta seldom has to refuse a send.

- Throughput: a business number sends at most WHATSAPP_MESSAGES_PER_SECOND messages a second (Meta's
  default tier is 80; above it, error 130429).
- Pair rate: one number may send one customer about one message every 6 seconds, with bursts that
  borrow from the future (up to 45 at once; above it, error 131056).

Both are token buckets. Meta's 131056 empties the customer's bucket, so their next messages wait for
the pace instead of failing again. Each process keeps its own buckets: with several replicas, Meta's
errors (retried in order by the outbox) are the backstop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List

PAIR_SECONDS_PER_MESSAGE = 6.0
PAIR_BURST = 45


@dataclass
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    at: float

    def level(self, now: float) -> float:
        return min(self.capacity, self.tokens + (now - self.at) * self.per_second)

    def take(self, now: float) -> float:
        """Take one token; how long to wait before using it (0 when one was there)."""
        self.tokens, self.at = self.level(now) - 1, now
        return max(0.0, -self.tokens / self.per_second)


class Pacer:
    def __init__(self, messages_per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.messages_per_second = messages_per_second
        self.clock = clock
        self._numbers: Dict[str, Bucket] = {}
        self._recipients: Dict[str, Bucket] = {}

    def throttled(self) -> List[str]:
        """Recipients who must wait before their next message (the sender leaves their rows queued)."""
        now = self.clock()
        for recipient in [r for r, bucket in self._recipients.items() if bucket.level(now) >= PAIR_BURST]:
            del self._recipients[recipient]  # full again: forget it
        return [r for r, bucket in self._recipients.items() if bucket.level(now) < 1]

    def take(self, phone_number_id: str, recipient: str) -> float:
        """Count a send to ``recipient`` from the number; seconds to wait for the number's throughput."""
        now = self.clock()
        pair = self._recipients.setdefault(recipient, Bucket(PAIR_BURST, 1 / PAIR_SECONDS_PER_MESSAGE, PAIR_BURST, now))
        pair.take(now)
        rate = self.messages_per_second
        return self._numbers.setdefault(phone_number_id, Bucket(rate, rate, rate, now)).take(now)

    def slow_down(self, recipient: str) -> None:
        """Meta said 131056 (too many messages to this customer): wait a full pace before the next one."""
        now = self.clock()
        self._recipients[recipient] = Bucket(PAIR_BURST, 1 / PAIR_SECONDS_PER_MESSAGE, 0, now)

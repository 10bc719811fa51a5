"""Work started at the same moment in several threads, to test what concurrent requests do."""

from __future__ import annotations

import threading
from typing import Any, Callable, List


def run_together(count: int, work: Callable[[int], Any]) -> List[Any]:
    """``count`` threads released at the same moment by a barrier; each outcome, or the exception raised."""
    barrier = threading.Barrier(count)
    outcomes: List[Any] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            outcomes[n] = work(n)
        except Exception as exc:  # noqa: BLE001 - the test inspects every outcome
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes

"""Sampling profiles of running server processes for the benchmarks (``--profile DIR``): py-spy (from PyPI,
in .venv) records each process without stopping it (``--nonblocking``, 100 samples a second, idle threads
left out) while the load runs; the top functions by own time (the sampled stacks' innermost frames) and by
total time (anywhere on a stack) are printed for the README. Each process's collapsed stacks stay in DIR
(``<name>.txt``: flamegraph.pl or speedscope.app read them).
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Dict, List, Optional, Tuple, Type

PY_SPY = Path(sys.executable).with_name("py-spy")
RATE = 100
# Innermost frames that are waiting, not working (py-spy's idle detection misses these): pool threads
# waiting for work, the event loop's select, a blocking socket read. Their samples are left out.
WAITING = {
    "_worker (concurrent/futures/thread.py)",
    "serve (sanic/server/runners.py)",
    "readinto (socket.py)",
    "wait (threading.py)",
    "select (selectors.py)",
}


class Profiles:
    """py-spy on each of ``pids`` (name → pid) for the duration of a ``with`` block."""

    def __init__(self, folder: Path, pids: Dict[str, int]) -> None:
        self.folder, self.pids = folder, pids
        self.recorders: Dict[str, subprocess.Popen] = {}

    def __enter__(self) -> Profiles:
        spy = PY_SPY if PY_SPY.exists() else shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy (requirements/rasa.txt has it)")
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.recorders[name] = subprocess.Popen(
                [str(spy), "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking", "--format", "raw"]
                + ["--output", str(self.folder / f"{name}.txt")],
                stdout=subprocess.DEVNULL,
                stderr=(self.folder / f"{name}.log").open("w"),
            )
        return self

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]
    ) -> None:
        for recorder in self.recorders.values():
            recorder.send_signal(signal.SIGINT)  # py-spy writes what it sampled and stops
        for recorder in self.recorders.values():
            try:
                recorder.wait(60)
            except subprocess.TimeoutExpired:
                recorder.kill()

    def report(self, top: int = 12) -> str:
        lines = []
        for name in self.pids:
            own, total, samples = summarise(self.folder / f"{name}.txt")
            if not samples:
                lines.append(f"{name}: no samples (see {self.folder / (name + '.log')})")
                continue
            lines.append(f"{name}: {samples} samples ({samples / RATE:.1f} s of CPU at {RATE}/s)")
            lines.append("  own time:")
            lines += [f"    {count / samples:6.1%}  {frame}" for frame, count in own.most_common(top)]
            lines.append("  total time:")
            lines += [f"    {count / samples:6.1%}  {frame}" for frame, count in total.most_common(top)]
        return "\n".join(lines)


def summarise(path: Path) -> Tuple[collections.Counter, collections.Counter, int]:
    """(own samples per frame, total samples per frame, working samples) from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    samples = 0
    if not path.exists():
        return own, total, 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames: List[str] = [frame for frame in stack.split(";")[1:] if frame]  # the first is the thread
        if not frames:
            continue
        n = int(count)
        if short(frames[-1]) in WAITING:
            continue
        samples += n
        own[short(frames[-1])] += n
        for frame in {short(f) for f in frames}:
            total[frame] += n
    return own, total, samples


def short(frame: str) -> str:
    """``function (path/to/site-packages/pkg/module.py:12)`` → ``function (pkg/module.py)``."""
    function, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.10/", "/work/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{function} ({where})"

"""The `comanda` command as an operator runs it, in this test's environment (its COMANDA_DATABASE_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, Optional


def comanda(
    *args: str, env: Optional[Dict[str, str]] = None, stdin: Optional[str] = None
) -> subprocess.CompletedProcess:
    """`python -m cli ARGS` with ``env`` on top of this process's environment: its output, as text."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=120,
    )

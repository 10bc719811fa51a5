"""Ports for the servers a test starts, and whether one is up."""

from __future__ import annotations

import socket

import requests


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str, timeout: float = 1) -> bool:
    """A GET of ``url`` answers 200 now: the server a test started is up."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False

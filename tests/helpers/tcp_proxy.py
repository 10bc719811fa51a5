"""A TCP proxy between the processes under test and a shared server (PostgreSQL, Redis) that a chaos test
can cut: every open connection is reset and new ones are refused, as when that server restarts or goes
down, without touching the real server other people's tests use. ``restore()`` lets connections in again.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Optional, Set

from tests.helpers.net import free_port

CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._sockets: Set[socket.socket] = set()
        self._guard = threading.Lock()
        self._listener: Optional[socket.socket] = None
        self.connections = 0  # accepted so far: a test can see that clients reconnected

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name=f"proxy-{self.port}").start()
        return self

    def cut(self) -> None:
        """The server "restarts": open connections are reset and nobody can connect until restore()."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _reset(listener)  # the shutdown stops the listening at once (a bare close waits for accept())
        with self._guard:
            doomed = list(self._sockets)
            self._sockets.clear()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._guard:
                if self._listener is not listener:  # cut while connecting
                    _reset(client)
                    _reset(upstream)
                    return
                self._sockets.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._guard:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Drop a connection as a server that died would (SO_LINGER 0: a reset); the shutdown wakes the thread
    blocked reading it."""
    for step in (
        lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
        lambda: sock.shutdown(socket.SHUT_RDWR),
        sock.close,
    ):
        try:
            step()
        except OSError:
            pass

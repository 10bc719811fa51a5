"""The ports `comanda run-cluster` gives its replicas (cli/cluster.py): free, distinct, and outside the range the
kernel hands to outgoing connections, so a replica that binds minutes later (a Rasa server loads its model
first; a killed one is started again) still finds its port free."""

from __future__ import annotations

import socket

from cli import cluster


def test_replica_ports_are_free_distinct_and_outside_the_ephemeral_range():
    ports = cluster.free_ports(6)
    assert len(set(ports)) == 6
    assert not any(port in cluster.ephemeral_ports() for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", port))


def test_a_port_something_listens_on_is_passed_over(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(cluster.random, "sample", lambda ports, k: [busy, *ports])
        assert busy not in cluster.free_ports(2)

"""`comanda run-cluster` (`make run-cluster`): several replicas of every process on one machine, as in production.

COMANDA_CLUSTER_REPLICAS (2) Rasa servers, action servers and back offices, each on a port of its own,
behind HAProxy (Debian's package, installed when missing) on the usual ports: COMANDA_RASA_PORT,
COMANDA_ACTIONS_PORT and COMANDA_BACKOFFICE_PORT. Every process gets the same settings, and the URLs in
them (COMANDA_RASA_URL, COMANDA_ACTIONS_URL, COMANDA_BACKOFFICE_URL) lead to the balancer, so webhooks,
the simulator, payment webhooks, the console and the processes themselves reach any replica.

They share one PostgreSQL database (COMANDA_CLUSTER_DATABASE_URL, created when missing, migrated, the
demo loaded when empty) and Redis (COMANDA_CLUSTER_REDIS_URL), where the Rasa servers keep each
conversation's lock (connectors.lock_store.AtomicRedisLockStore). A replica that dies after it was
ready is started again (the balancer's health checks route around it meanwhile); one that never gets
ready, or the balancer stopping, stops the cluster. Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from string import Template
from typing import Callable, Dict, List, Optional

from cli.runner import (
    Service,
    _wait_all,
    action_server,
    backoffice_server,
    ensure_port_free,
    is_ready,
    process_env,
    rasa_server,
)
from comanda.errors import ConfigError
from comanda.settings import home, redacted_url, setting, setting_int

BALANCED: Dict[str, Callable[[Optional[int]], Service]] = {
    "actions": action_server,
    "backoffice": backoffice_server,
    "rasa": rasa_server,
}
FRONTEND_PORTS = {
    "rasa": "COMANDA_RASA_PORT",
    "actions": "COMANDA_ACTIONS_PORT",
    "backoffice": "COMANDA_BACKOFFICE_PORT",
}
TEMPLATE = "deploy/haproxy/cluster.cfg.tmpl"


def ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections and bind(0) (Linux's default when it cannot be read)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_ports(count: int) -> List[int]:
    """Ports nobody listens on, below the ephemeral range. A replica binds its port long after it was chosen
    (a Rasa server only once its model is loaded, minutes on a busy machine; a restarted one again), and a port
    of the ephemeral range may be some outgoing connection's by then: the replica failed with "address already
    in use" and took the cluster down. Below that range, only a server that binds that very port can take it."""
    ephemeral = ephemeral_ports()
    candidates = [p for p in range(10000, 32768) if p not in ephemeral] or list(range(1024, 10000))
    chosen: List[int] = []
    for port in random.sample(candidates, len(candidates)):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise ConfigError(f"fewer than {count} free ports between {candidates[0]} and {candidates[-1]}")


def cluster_settings() -> Dict[str, str]:
    """What the cluster sets for every process, on top of the usual settings: its database and Redis."""
    return {
        "COMANDA_DATABASE_URL": setting("COMANDA_CLUSTER_DATABASE_URL"),
        "COMANDA_REDIS_URL": setting("COMANDA_CLUSTER_REDIS_URL"),
    }


def ensure_database(url: str) -> None:
    """The cluster's PostgreSQL database, created when missing (replicas cannot share a SQLite file safely
    across machines, and the tracker store, leases and locks are tested on PostgreSQL)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"COMANDA_CLUSTER_DATABASE_URL must be a PostgreSQL URL, not {redacted_url(url)}")
    name = parsed.database or ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"the cluster's database name must be letters, digits and _, not {name!r}")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                print(f"comanda: created database {name}", flush=True)
    except SQLAlchemyError as exc:
        raise ConfigError(f"PostgreSQL unusable at {redacted_url(url)}: {exc.__class__.__name__}: {exc}") from None
    finally:
        admin.dispose()


def ensure_redis(url: str) -> None:
    try:
        import redis
    except ImportError:
        raise ConfigError("run-cluster runs in the Rasa server's environment: use `make run-cluster`") from None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise ConfigError(
            f"Redis unreachable at {redacted_url(url)} ({exc}): start it, or set COMANDA_CLUSTER_REDIS_URL"
        ) from None


def ensure_haproxy() -> str:
    """HAProxy's path; Debian's package is installed when missing (as root, with apt-get)."""
    found = shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)
    if found:
        return found
    if not shutil.which("apt-get"):
        raise ConfigError("HAProxy is not installed: install HAProxy 2.x (Debian: apt-get install haproxy)")
    if os.geteuid() != 0:
        raise ConfigError("HAProxy is not installed: `sudo apt-get install haproxy`, then run again")
    print("comanda: installing HAProxy (apt-get install haproxy)...", flush=True)
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "haproxy"]):
        if subprocess.run(argv, env=quiet, stdout=subprocess.DEVNULL).returncode != 0:
            raise ConfigError(f"`{' '.join(argv)}` failed: install HAProxy by hand, then run again")
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(found):
        raise ConfigError("apt-get installed haproxy but it is not on PATH")
    return found


def cluster_dir(frontends: Dict[str, int]) -> Path:
    """Where the running cluster keeps HAProxy's configuration and admin socket (one per Rasa port)."""
    return home() / "var" / "cluster" / str(frontends["rasa"])


def balancer_config(frontends: Dict[str, int], replicas: Dict[str, List[int]]) -> str:
    """HAProxy's configuration from the template: the frontends, and one server line per replica."""

    def servers(kind: str, backup_after_first: bool = False) -> str:
        return "\n".join(
            f"    server {kind}-{i} 127.0.0.1:{port} check" + (" backup" if backup_after_first and i > 1 else "")
            for i, port in enumerate(replicas[kind], start=1)
        )

    template = Template((home() / TEMPLATE).read_text())
    return template.substitute(
        stats_socket=cluster_dir(frontends) / "haproxy.sock",
        **{f"{kind}_port": port for kind, port in frontends.items()},
        **{f"{kind}_servers": servers(kind) for kind in BALANCED},
        simulator_servers=servers("backoffice", backup_after_first=True).replace("server backoffice-", "server sim-"),
    )


@dataclass
class Running:
    service: Service
    proc: subprocess.Popen
    started: float
    ready: bool = False


def plan(replicas: int) -> Dict[str, List[Service]]:
    """The replicas of each kind, on free ports: rasa-1, rasa-2, …"""
    ports = iter(free_ports(replicas * len(BALANCED)))
    return {
        kind: [replace(make(next(ports)), name=f"{kind}-{i}") for i in range(1, replicas + 1)]
        for kind, make in BALANCED.items()
    }


def prepare_database(env: Dict[str, str]) -> None:
    """`make db` for the cluster's database: migrate, and load the demo when it is empty."""
    for argv in (["migrate"], ["seed", "--demo", "--if-empty"]):
        if subprocess.call([sys.executable, "-m", "cli", *argv], cwd=home(), env=env) != 0:
            raise ConfigError(f"`comanda {' '.join(argv)}` failed on the cluster's database")


def run_cluster() -> int:
    replicas = setting_int("COMANDA_CLUSTER_REPLICAS")
    if replicas < 1:
        raise ConfigError("COMANDA_CLUSTER_REPLICAS must be 1 or more")
    os.environ.update(cluster_settings())
    if setting("COMANDA_LOCK_STORE") == "in_memory":
        raise ConfigError("replicas need a shared lock store: unset COMANDA_LOCK_STORE (it follows COMANDA_REDIS_URL)")
    haproxy = ensure_haproxy()
    ensure_database(setting("COMANDA_DATABASE_URL"))
    ensure_redis(setting("COMANDA_REDIS_URL"))
    frontends = {kind: setting_int(name) for kind, name in FRONTEND_PORTS.items()}
    for kind, port in frontends.items():
        ensure_port_free(Service(f"balancer ({kind})", [], port, "/"))
    env = process_env()
    prepare_database(env)

    services = plan(replicas)
    config = cluster_dir(frontends) / "haproxy.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(balancer_config(frontends, {kind: [s.port for s in found] for kind, found in services.items()}))
    check = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise ConfigError(f"HAProxy refuses {config}: {check.stderr.strip() or check.stdout.strip()}")
    balancer = Service("balancer", [haproxy, "-db", "-f", str(config)], frontends["rasa"], "/")
    for service in (s for found in services.values() for s in found):
        print(f"comanda: {service.name} on port {service.port}", flush=True)
    return supervise([balancer, *(s for found in services.values() for s in found)], env, frontends)


def supervise(services: List[Service], env: Dict[str, str], frontends: Dict[str, int]) -> int:
    started = time.monotonic()
    running = {s.name: Running(s, subprocess.Popen(s.argv, cwd=home(), env=env), time.monotonic()) for s in services}
    stopping: List[bool] = []

    def stop(*_args: object) -> None:
        stopping.append(True)
        for item in running.values():
            if item.proc.poll() is None:
                item.proc.send_signal(signal.SIGINT)

    def stop_all(code: int) -> int:
        stop()
        _wait_all({name: item.proc for name, item in running.items()})
        return code

    signal.signal(signal.SIGTERM, stop)
    announced = False
    try:
        while True:
            for name, item in running.items():
                code = item.proc.poll()
                if code is None:
                    continue
                if stopping:
                    return stop_all(0)
                if name == "balancer" or not item.ready:
                    why = "the balancer stopped" if name == "balancer" else f"{name} stopped before it was ready"
                    print(f"comanda: {why} (exit {code}); stopping the cluster", file=sys.stderr, flush=True)
                    return stop_all(code or 1)
                print(f"comanda: {name} stopped (exit {code}); starting it again", file=sys.stderr, flush=True)
                running[name] = Running(
                    item.service, subprocess.Popen(item.service.argv, cwd=home(), env=env), time.monotonic()
                )
            for item in running.values():
                if not item.ready and is_ready(item.service):
                    item.ready = True
                    print(
                        f"comanda: {item.service.name} ready after {time.monotonic() - item.started:.1f} s", flush=True
                    )
            if not announced and all(item.ready for item in running.values()):
                announced = True
                print(
                    f"comanda: cluster ready after {time.monotonic() - started:.1f} s: Rasa at :{frontends['rasa']}, "
                    f"actions at :{frontends['actions']}, back office at :{frontends['backoffice']} "
                    f"(simulator: {setting('COMANDA_BACKOFFICE_URL')}/simulator)",
                    flush=True,
                )
            time.sleep(0.5)
    except KeyboardInterrupt:
        return stop_all(0)


def add_cluster_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run-cluster",
        help="start replicas of every process behind HAProxy, on PostgreSQL and Redis; Ctrl-C stops them",
    )
    p.set_defaults(func=lambda _args: run_cluster())

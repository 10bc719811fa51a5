"""Start Comanda's processes together (`comanda run`), each in its own virtual environment.

The Rasa server runs from COMANDA_RASA_VENV, the action server from COMANDA_ACTIONS_VENV. Every
process gets the resolved settings in its environment, so endpoints.yml can refer to them. If one
process dies the others are stopped; Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, List, Optional

from comanda.errors import ConfigError
from comanda.settings import (
    SETTINGS,
    SIMULATOR_WHATSAPP,
    home,
    real_whatsapp_credentials,
    setting,
    setting_int,
    simulator_graph_url,
)


@dataclass
class Service:
    name: str
    argv: List[str]
    port: int
    ready_path: str
    host: str = "0.0.0.0"

    @property
    def local_url(self) -> str:
        """Where this machine reaches it (the host it binds, or loopback when it binds them all)."""
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"


def uses_simulator() -> bool:
    """The simulator stands in for Meta unless real WhatsApp credentials are set."""
    return setting("COMANDA_SIMULATOR") == "1" and not real_whatsapp_credentials()


def process_env() -> Dict[str, str]:
    """The environment for child processes: the caller's, plus every setting resolved."""
    env = dict(os.environ)
    for name in SETTINGS:
        env[name] = setting(name)
    if uses_simulator():
        env.update(SIMULATOR_WHATSAPP)
        env["WHATSAPP_GRAPH_URL"] = os.environ.get("WHATSAPP_GRAPH_URL") or simulator_graph_url()
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # Rasa's tracker store predates SQLAlchemy 2
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    return env


def venv_bin(venv_setting: str, program: str) -> str:
    path = Path(setting(venv_setting)) / "bin" / program
    if not path.exists():
        raise ConfigError(f"{path} not found: run `make venvs` (or set {venv_setting})")
    return str(path)


def ensure_actions_environment(module: str) -> None:
    """Commands that need a package only COMANDA_ACTIONS_VENV has (``stripe``, ``satcfdi``) run again
    with that environment's ``comanda`` when it is missing here."""
    if find_spec(module) is None:
        if Path(sys.prefix).resolve() == Path(setting("COMANDA_ACTIONS_VENV")).resolve():
            raise ConfigError(f"{module} is not installed in COMANDA_ACTIONS_VENV: run `make venvs`")
        program = venv_bin("COMANDA_ACTIONS_VENV", "comanda")
        os.execve(program, [program, *sys.argv[1:]], process_env())


def rasa_command(*args: str) -> List[str]:
    """Rasa's command line through cli.rasa_server, which adds the API token out of sight of `ps`."""
    return [venv_bin("COMANDA_RASA_VENV", "python"), "-m", "cli.rasa_server", *args]


def rasa_server(port: Optional[int] = None) -> Service:
    port = port or setting_int("COMANDA_RASA_PORT")
    return Service(
        "rasa",
        rasa_command(
            "run",
            "--enable-api",
            "--port",
            str(port),
            "--model",
            str(home() / "models"),
            "--endpoints",
            str(home() / "endpoints.yml"),
            "--credentials",
            str(home() / "credentials.yml"),
        ),
        port,
        "/",
    )


def action_server(port: Optional[int] = None) -> Service:
    port = port or setting_int("COMANDA_ACTIONS_PORT")
    return Service(
        "actions",
        [venv_bin("COMANDA_ACTIONS_VENV", "python"), "-m", "cli.action_server", "--port", str(port)],
        port,
        "/health",
        setting("COMANDA_ACTIONS_HOST"),
    )


def backoffice_server(port: Optional[int] = None) -> Service:
    port = port or setting_int("COMANDA_BACKOFFICE_PORT")
    return Service(
        "backoffice",
        [
            venv_bin("COMANDA_ACTIONS_VENV", "python"),
            "-m",
            "backoffice",
            "--port",
            str(port),
        ],
        port,
        "/health",
        "127.0.0.1",
    )


def ensure_port_free(service: Service) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", service.port))
        except OSError:
            raise ConfigError(
                f"port {service.port} ({service.name}) is already in use: stop what runs there "
                f"or choose another port in the settings (`comanda settings`)"
            ) from None


def is_ready(service: Service) -> bool:
    try:
        with urllib.request.urlopen(f"{service.local_url}{service.ready_path}", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def run_stack(only: Optional[str] = None) -> int:
    services = [s for s in (action_server(), backoffice_server(), rasa_server()) if only in (None, s.name)]
    for service in services:
        ensure_port_free(service)
    env = process_env()
    started = time.monotonic()
    procs = {s.name: subprocess.Popen(s.argv, cwd=home(), env=env) for s in services}

    stopping = []

    def stop(*_args: object) -> None:
        stopping.append(True)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    waiting = {s.name: s for s in services}
    try:
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    if stopping:  # we were asked to stop (SIGTERM): a clean exit
                        _wait_all(procs)
                        return 0
                    print(f"comanda: {name} stopped (exit {proc.returncode}); stopping the rest", file=sys.stderr)
                    stop()
                    _wait_all(procs)
                    return proc.returncode or 1
            for name in [n for n, s in waiting.items() if is_ready(s)]:
                service = waiting.pop(name)
                print(
                    f"comanda: {name} ready on port {service.port} after {time.monotonic() - started:.1f} s", flush=True
                )
                if not waiting:
                    simulator = (
                        f"in the WhatsApp simulator at {setting('COMANDA_BACKOFFICE_URL')}/simulator, "
                        if uses_simulator()
                        else ""
                    )
                    print(
                        f"comanda: ready after {time.monotonic() - started:.1f} s. Chat {simulator}with `make shell`, "
                        f"or POST to http://127.0.0.1:{setting('COMANDA_RASA_PORT')}/webhooks/rest/webhook?token=… "
                        "(the Rasa API token, COMANDA_RASA_TOKEN)",
                        flush=True,
                    )
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop()
        _wait_all(procs)
        return 0


def _wait_all(procs: Dict[str, subprocess.Popen], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_actions_url() -> Optional[str]:
    """COMANDA_ACTIONS_URL when an action server answers there with this checkout's token (`make run`'s)."""
    url = setting("COMANDA_ACTIONS_URL")
    probe = urllib.request.Request(
        f"{url.rstrip('/').removesuffix('/webhook')}/actions",
        headers={"Authorization": f"Bearer {setting('COMANDA_ACTIONS_TOKEN')}"},
    )
    try:
        with urllib.request.urlopen(probe, timeout=2) as answer:
            return url if answer.status == 200 else None
    except OSError:
        return None


def shell_command(port: int) -> List[str]:
    """`rasa shell` on its own port, on loopback: its REST input takes anyone's messages unauthenticated."""
    return rasa_command(
        "shell",
        "--model",
        str(home() / "models"),
        "--endpoints",
        str(home() / "endpoints.yml"),
        "--port",
        str(port),
        "--interface",
        "127.0.0.1",
    )


def run_shell() -> int:
    """Chat in the terminal beside `comanda run`: its action server when one answers, else one of our own
    on a free port; `rasa shell` in the foreground on another free port."""
    env = process_env()
    proc: Optional[subprocess.Popen] = None
    if running_actions_url() is None:
        actions = action_server(free_port())
        env.update(COMANDA_ACTIONS_PORT=str(actions.port), COMANDA_ACTIONS_URL=f"{actions.local_url}/webhook")
        proc = subprocess.Popen(actions.argv, cwd=home(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not is_ready(actions):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise ConfigError("the action server did not start: try `comanda run --only actions` to see why")
            time.sleep(0.2)
    try:
        return subprocess.call(shell_command(free_port()), cwd=home(), env=env)
    finally:
        if proc is not None:
            proc.terminate()
            _wait_all({"actions": proc})

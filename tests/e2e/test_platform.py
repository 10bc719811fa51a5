"""The running stack's doors: what is on the command line, who may call the action server, how big a
request may be, and the command line's tools beside `comanda run` (`comanda parse`, `comanda shell`)."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Set

import requests

from comanda.settings import setting
from tests.helpers.net import free_port
from tests.helpers.paths import ROOT
from tests.helpers.stack import TOKEN, Stack, say_rest


def descendants(pid: int) -> Set[int]:
    """Every process started (directly or not) by ``pid``, from /proc."""
    children: Dict[int, List[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: Set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def command_lines(pids: Set[int]) -> List[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def test_no_secret_is_on_any_command_line(stack: Stack):
    lines = command_lines(descendants(stack.proc.pid))
    assert any("cli.rasa_server run" in line for line in lines) and any("cli.action_server" in line for line in lines)
    for secret in (TOKEN, setting("COMANDA_ACTIONS_TOKEN")):
        assert not [line for line in lines if secret in line]


def test_the_action_server_answers_only_the_rasa_server(stack: Stack):
    """Issue 10: `POST :5055/webhook` for another customer's conversation ran their actions."""
    call = {
        "next_action": "action_order_status",
        "sender_id": "centro:whatsapp:+5215500000001",
        "tracker": {"sender_id": "centro:whatsapp:+5215500000001", "slots": {}, "events": [], "latest_message": {}},
        "domain": {},
        "version": "3.6.21",
    }
    actions = f"http://127.0.0.1:{stack.ports['actions']}"
    assert requests.post(f"{actions}/webhook", json=call, timeout=10).status_code == 401
    assert requests.get(f"{actions}/actions", timeout=10).status_code == 401
    # ...while the Rasa server, which sends the secret, runs actions as before (the menu is an action).
    assert "Esto tenemos hoy en Café Esquina Centro" in say_rest(stack, "e2e-platform", "hola, ¿qué tienen?")


def test_an_oversized_webhook_gets_413_before_its_body_is_read(stack: Stack):
    """Unsigned, 50 MiB announced: refused on the Content-Length alone, nothing of the body sent."""
    with socket.create_connection(("127.0.0.1", stack.ports["rasa"]), timeout=10) as connection:
        connection.sendall(
            b"POST /webhooks/whatsapp/webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {50 * 1024 * 1024}\r\n\r\n".encode()
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    # A body within the cap is still read and judged by its signature.
    unsigned = requests.post(f"{stack.rasa}/webhooks/whatsapp/webhook", data=b"{}", timeout=10)
    assert unsigned.status_code == 401


def comanda_parse(stack: Stack, *messages: str, rasa_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "parse", *messages],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**stack.env, "COMANDA_RASA_URL": rasa_url},
    )


def test_parse_goes_through_the_running_rasa_server_quietly(stack: Stack):
    started = time.monotonic()
    messages = ("me das 3 de pastor y una coca porfa", "hi, one large taro milk tea")
    done = comanda_parse(stack, *messages, rasa_url=stack.rasa)
    elapsed = time.monotonic() - started
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    es, en = (json.loads(line) for line in done.stdout.splitlines())
    assert (es["intent"], es["language"]) == ("add_items", "es")
    assert [(i["sku"], i["quantity"]) for i in es["items"]] == [("TACO-PASTOR", 3), ("COCA-600", 1)]
    assert en["items"][0]["sku"] == "TARO-MT"
    assert elapsed < 8, f"{elapsed:.1f} s: the model was loaded again instead of asking the server"


def test_parse_without_a_server_loads_the_model_and_says_nothing_on_stderr(stack: Stack):
    done = comanda_parse(stack, "me das 3 de pastor y una coca porfa", rasa_url=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    [reading] = (json.loads(line) for line in done.stdout.splitlines())
    assert [(i["sku"], i["quantity"]) for i in reading["items"]] == [("TACO-PASTOR", 3), ("COCA-600", 1)]


def test_shell_runs_beside_the_running_stack(stack: Stack):
    """`make shell` while `make run` runs: no second server on the busy ports; the bot answers."""
    primary, secondary = pty.openpty()
    shell = subprocess.Popen(
        [sys.executable, "-m", "cli", "shell"],
        cwd=ROOT,
        env={**stack.env, "TERM": "dumb", "COLUMNS": "200"},
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    try:
        seen = read_until(primary, b"Bot loaded", shell, timeout=240)
        os.write(primary, "¿a qué hora abren?\r".encode())
        seen += read_until(primary, b"07:30", shell, timeout=120)
        os.write(primary, b"/stop\r")
        assert shell.wait(60) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
        os.close(primary)
    assert b"address already in use" not in seen.lower()
    assert stack.proc.poll() is None  # `comanda run` was not disturbed


def read_until(fd: int, expected: bytes, proc: subprocess.Popen, timeout: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while expected not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen.decode(errors="replace")[-3000:]
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen

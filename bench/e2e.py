"""`make bench-e2e`: Comanda's whole stack and a bare `rasa init` bot, side by side, under the same load.

Both start in the same run on this machine; one load generator (asyncio, in this process) drives each
in turn with the same phases:

- saturation: ``--users`` customers, each starting a new conversation as soon as the last one ends, no
  pause between messages, for ``--seconds``: messages answered per second;
- steady: a new conversation every 1/``--rate`` seconds (10 a second by default) for ``--seconds``:
  reply latency p50/p95 (message sent → the bot's first reply out; turns still unanswered when the
  run ends count as timeouts);
- CPU: each server process's user+system time from /proc/<pid>/stat, before and after the saturation
  phase, per message answered.

Comanda runs as `comanda run` starts it: the SQL tracker store and Comanda's tables in one database (a
fresh SQLite file, or ``--database-url`` PostgreSQL, created and dropped), the action server, the back
office, the WhatsApp connector with its inbox and outbox, and the simulator's fake Graph API. Its
customers are signed WhatsApp webhooks, as Meta posts them; a turn is over when the inbox row is
processed and every reply it queued has been accepted by the Graph API (read from the database). The
conversation: greeting, an order, a cart edit, checkout for pickup by card (three taps), payment on the
sandbox page, and the "paid" message. The demo catalog is loaded with stock for millions of tacos.

The bare bot is `rasa init --no-prompt` (moodbot), made and trained once under var/bench/rasa-init/
and kept, served by `rasa run` on its REST channel (its only channel); its conversation is five
messages (greet, unhappy, affirm, great, goodbye), each answered in the HTTP response.

Small numbers while the machine is shared: ``make bench-e2e BENCH_E2E="--users 2 --rate 0.5 --seconds 10"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, List, Optional, Tuple

import aiohttp
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from backoffice.simulator import payloads
from bench.profiles import Profiles
from comanda import models as m
from comanda.db import dispose_engines, new_session, transaction
from comanda.migrate import upgrade
from comanda.services.catalog_loader import load_catalog, read_catalog
from comanda.settings import SIMULATOR_WHATSAPP, home

PHONE_NUMBER_ID, DISPLAY_NUMBER = "106540352242922", "525512345678"  # the demo's Centro branch
BENCH_DIR = home() / "var" / "bench"
RASA_INIT = BENCH_DIR / "rasa-init"
POLL_SECONDS = 0.05
READY_SECONDS = 900  # the Rasa servers load their models on a busy machine
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: List[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- processes --------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> Dict[int, str]:
    """The direct children of a process: pid → command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


@dataclass
class Server:
    """A stack under test: started as a child process; ``processes`` names its server processes."""

    name: str
    argv: List[str]
    env: Dict[str, str]
    cwd: Path
    ready: Callable[[], bool]
    log_path: Path
    proc: Optional[subprocess.Popen] = None
    processes: Dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_SECONDS
        while not self.ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{self.name} did not start; its log: {self.log_path}")
            time.sleep(1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def cpu(self) -> Dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.processes.items()}


def http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def bare_bot(log_dir: Path) -> Server:
    """The `rasa init` bot under var/bench/rasa-init/: made and trained the first time, then kept."""
    rasa = str(Path(sys.prefix) / "bin" / "rasa")
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    if not list((RASA_INIT / "models").glob("*.tar.gz")):
        RASA_INIT.mkdir(parents=True, exist_ok=True)
        print(f"making the bare bot: rasa init --no-prompt in {RASA_INIT} (trains once)", flush=True)
        subprocess.run([rasa, "init", "--no-prompt", "--init-dir", str(RASA_INIT)], env=env, check=True)
    port = free_port()
    argv = [rasa, "run", "--port", str(port), "--model", "models", "--credentials", "credentials.yml"]
    server = Server(
        "bare rasa init", argv, env, RASA_INIT, lambda: http_ok(f"http://127.0.0.1:{port}/"), log_dir / "bare.log"
    )
    server.env["BENCH_URL"] = f"http://127.0.0.1:{port}"
    return server


def bench_catalog() -> Dict[str, Any]:
    """The demo business with stock for millions of orders: the benchmark must never run out."""
    data = read_catalog(home() / "data" / "demo" / "catalog.yml")

    def plenty(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "stock" and isinstance(value, dict):
                    node[key] = {store: 10_000_000 for store in value}
                else:
                    plenty(value)
        elif isinstance(node, list):
            for item in node:
                plenty(item)

    plenty(data)
    return data


def comanda_stack(log_dir: Path, database_url: str) -> Server:
    ports = {"rasa": free_port(), "actions": free_port(), "backoffice": free_port()}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WHATSAPP_", "COMANDA_"))},
        "COMANDA_DATABASE_URL": database_url,
        "COMANDA_SIMULATOR": "1",
        "COMANDA_RASA_PORT": str(ports["rasa"]),
        "COMANDA_ACTIONS_PORT": str(ports["actions"]),
        "COMANDA_BACKOFFICE_PORT": str(ports["backoffice"]),
        "BENCH_URL": f"http://127.0.0.1:{ports['rasa']}",
    }
    log_path = log_dir / "comanda.log"
    argv = [sys.executable, "-m", "cli", "run"]
    return Server(
        "comanda", argv, env, home(), lambda: "comanda: ready" in log_path.read_text(errors="replace"), log_path
    )


# --- conversations ----------------------------------------------------------------------------------


@dataclass
class Turn:
    target: str
    step: str
    started: float
    answered: Optional[float] = None
    customer: bool = True  # False: the bot's own news (the payment), not an answer to a message


class Load:
    """What a run measured: every customer turn, and when it was answered."""

    def __init__(self) -> None:
        self.turns: List[Turn] = []
        self.failures: List[str] = []

    def answered_between(self, start: float, end: float) -> List[Turn]:
        return [t for t in self.turns if t.customer and t.answered is not None and start <= t.answered <= end]


class RestBot:
    """A Rasa bot spoken to on its REST channel: the answer is in the HTTP response."""

    script = ["hello", "I am sad", "yes", "great", "bye"]

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http

    async def conversation(self, load: Load) -> None:
        sender = uuid.uuid4().hex
        for message in self.script:
            turn = Turn("bare", message, time.time())
            load.turns.append(turn)
            async with self.http.post(
                f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message}
            ) as r:
                replies = await r.json()
            if r.status == 200 and replies:
                turn.answered = time.time()


class TurnFailed(Exception):
    pass


@dataclass
class Waiting:
    """A turn the poller watches: the customer's message, or (``message_id`` None) a pushed message."""

    conversation_id: str
    message_id: Optional[str]
    since: int
    done: asyncio.Future[Tuple[float, List[Tuple[str, Dict[str, Any]]]]]


class Poller:
    """Reads, every POLL_SECONDS and in two queries for all customers, which turns are over: the inbox row
    processed and every reply the turn queued accepted by the Graph API (a turn's replies have dedupe keys
    "<message id>:<n>"). A turn is answered when its first reply reached the Graph API."""

    def __init__(self) -> None:
        self.waiting: List[Waiting] = []

    async def wait(self, conversation_id: str, message_id: Optional[str], since: int = 0) -> Tuple[float, List[Any]]:
        item = Waiting(conversation_id, message_id, since, asyncio.get_running_loop().create_future())
        self.waiting.append(item)
        return await item.done

    async def run(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.waiting:
                watched = list(self.waiting)
                for item, outcome in zip(watched, await asyncio.to_thread(self._check, watched), strict=True):
                    if outcome is not None:
                        self.waiting.remove(item)
                        if isinstance(outcome, Exception):
                            item.done.set_exception(outcome)
                        else:
                            item.done.set_result(outcome)

    @staticmethod
    def _check(watched: List[Waiting]) -> List[Any]:
        conversations = {item.conversation_id for item in watched}
        with new_session() as session:
            inbox = dict(
                session.execute(
                    select(m.InboundMessage.external_id, m.InboundMessage.status).where(
                        m.InboundMessage.external_id.in_([i.message_id for i in watched if i.message_id])
                    )
                ).all()
            )
            rows = session.execute(
                select(
                    m.OutboundMessage.id,
                    m.OutboundMessage.conversation_id,
                    m.OutboundMessage.dedupe_key,
                    m.OutboundMessage.external_id,
                    m.OutboundMessage.payload,
                    m.OutboundMessage.status,
                    m.OutboundMessage.sent_at,
                )
                .where(m.OutboundMessage.conversation_id.in_(conversations))
                .order_by(m.OutboundMessage.id)
            ).all()
        busy = {r.conversation_id for r in rows if r.status in ("queued", "sending")}
        outcomes: List[Any] = []
        for item in watched:
            if item.message_id is None:  # a pushed message: any new row sent
                sent = [
                    r for r in rows if r.conversation_id == item.conversation_id and r.id > item.since and r.sent_at
                ]
                outcomes.append((sent[0].sent_at.timestamp(), []) if sent else None)
                continue
            status = inbox.get(item.message_id)
            replies = [r for r in rows if (r.dedupe_key or "").startswith(f"{item.message_id}:")]
            if status == "failed":
                outcomes.append(TurnFailed(f"message {item.message_id} failed in the bot"))
            elif status == "processed" and item.conversation_id not in busy and replies:
                first = min(r.sent_at for r in replies if r.sent_at)
                outcomes.append((first.timestamp(), [(r.external_id, r.payload) for r in replies]))
            else:
                outcomes.append(None)
        return outcomes


def tap(chat: payloads.Chat, wamid: str, shown: Dict[str, Any], title: str) -> Dict[str, Any]:
    """The webhook of a tap on the button or list row called ``title`` of the bot's message ``wamid``."""
    action = (shown.get("interactive") or {}).get("action", {})
    buttons = {b["reply"]["title"]: b["reply"]["id"] for b in action.get("buttons", [])}
    rows = {r["title"]: r for section in action.get("sections", []) for r in section["rows"]}
    if title in buttons:
        return payloads.button_reply(chat, buttons[title], title, wamid)
    if title in rows:
        return payloads.list_reply(chat, rows[title]["id"], title, rows[title].get("description"), wamid)
    raise TurnFailed(f"no {title!r} to tap in the bot's last message: {json.dumps(shown)[:300]}")


class WhatsAppCustomer:
    """Comanda's customer: signed webhooks to the connector, as Meta posts them."""

    def __init__(self, rasa_url: str, poller: Poller, http: aiohttp.ClientSession) -> None:
        self.rasa_url, self.poller, self.http = rasa_url, poller, http
        self.secret = SIMULATOR_WHATSAPP["WHATSAPP_APP_SECRET"]

    async def conversation(self, load: Load) -> None:
        chat = payloads.Chat(PHONE_NUMBER_ID, DISPLAY_NUMBER, "52155" + str(uuid.uuid4().int)[:8], "Bench")
        conversation_id = f"centro:whatsapp:+52{chat.wa_id[3:]}"
        for message in ("hola", "me das 2 de pastor y una horchata porfa", "quítale la horchata", "es todo"):
            replies = await self._turn(load, conversation_id, message, payloads.text(chat, message))
        for title in ("Paso a recoger", "Tarjeta", "Confirmar"):
            wamid, shown = replies[-1]
            replies = await self._turn(load, conversation_id, title, tap(chat, wamid, shown, title))
        url = replies[-1][1]["interactive"]["action"]["parameters"]["url"]
        since = await asyncio.to_thread(last_outbox_id, conversation_id)
        paid = Turn("comanda", "pay", time.time(), customer=False)
        load.turns.append(paid)
        async with self.http.post(f"{url}/pay") as r:
            await r.read()
        paid.answered, _ = await self.poller.wait(conversation_id, None, since)

    async def _turn(
        self, load: Load, conversation_id: str, step: str, payload: Dict[str, Any]
    ) -> List[Tuple[str, Dict[str, Any]]]:
        raw = payloads.encode(payload)
        message_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        turn = Turn("comanda", step, time.time())
        load.turns.append(turn)
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": payloads.sign(self.secret, raw)}
        async with self.http.post(f"{self.rasa_url}/webhooks/whatsapp/webhook", data=raw, headers=headers) as r:
            await r.read()
        turn.answered, replies = await self.poller.wait(conversation_id, message_id)
        return replies


def last_outbox_id(conversation_id: str) -> int:
    with new_session() as session:
        found = session.execute(
            select(m.OutboundMessage.id)
            .where(m.OutboundMessage.conversation_id == conversation_id)
            .order_by(m.OutboundMessage.id.desc())
        ).scalar()
    return found or 0


# --- phases -----------------------------------------------------------------------------------------


Conversation = Callable[[Load], Coroutine[Any, Any, None]]


async def saturate(conversation: Conversation, users: int, seconds: float) -> Tuple[Load, float, float]:
    """``users`` customers back to back for ``seconds``: the load and its measured window."""
    load, start = Load(), time.time()
    end = start + seconds

    async def customer() -> None:
        while time.time() < end:
            try:
                await conversation(load)
            except (TurnFailed, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                load.failures.append(f"{type(exc).__name__}: {exc}")

    tasks = [asyncio.create_task(customer()) for _ in range(users)]
    await asyncio.sleep(seconds)
    done = time.time()
    await asyncio.gather(*tasks, return_exceptions=True)  # let the last conversations end; not counted
    return load, start, done


async def steady(conversation: Conversation, rate: float, seconds: float) -> Load:
    """A new conversation every 1/rate seconds for ``seconds``, then wait for them all."""
    load, tasks = Load(), []  # type: Load, List[asyncio.Task[None]]
    for _ in range(max(1, int(rate * seconds))):
        tasks.append(asyncio.create_task(conversation(load)))
        await asyncio.sleep(1 / rate)
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            load.failures.append(f"{type(outcome).__name__}: {outcome}")
    return load


@dataclass
class Figures:
    name: str
    channel: str
    messages_per_conversation: int
    saturation_rate: float = 0.0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    unanswered: int = 0
    steady_turns: int = 0
    failed_conversations: int = 0
    cpu_ms_per_message: Dict[str, float] = field(default_factory=dict)
    profile: str = ""  # with --profile: the top functions of each process at saturation


async def measure(
    server: Server,
    figures: Figures,
    make: Callable[[aiohttp.ClientSession], Conversation],
    args: argparse.Namespace,
    poller: Optional[Poller] = None,
) -> None:
    polling = asyncio.create_task(poller.run()) if poller else None
    try:
        await _measure(server, figures, make, args)
    finally:
        if polling:
            polling.cancel()


async def _measure(
    server: Server, figures: Figures, make: Callable[[aiohttp.ClientSession], Conversation], args: argparse.Namespace
) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        conversation = make(http)
        for _ in range(args.warmup):
            await conversation(Load())
        print(f"{figures.name}: saturation, {args.users} users for {args.seconds:g} s", flush=True)
        before = server.cpu()
        if args.profile:
            with Profiles(args.profile / figures.name, server.processes) as profiles:
                load, start, end = await saturate(conversation, args.users, args.seconds)
            figures.profile = profiles.report()
        else:
            load, start, end = await saturate(conversation, args.users, args.seconds)
        after = server.cpu()
        answered = len(load.answered_between(start, end))
        figures.failed_conversations = len(load.failures)
        figures.saturation_rate = answered / (end - start)
        figures.cpu_ms_per_message = {
            name: 1000 * (after[name] - before[name]) / max(answered, 1) for name in server.processes
        }
        print(f"{figures.name}: steady, {args.rate:g} conversations/s for {args.seconds:g} s", flush=True)
        load = await steady(conversation, args.rate, args.seconds)
        turns = [t for t in load.turns if t.customer]
        latencies = [t.answered - t.started for t in turns if t.answered is not None]
        figures.steady_turns = len(turns)
        figures.unanswered = sum(1 for t in turns if t.answered is None)
        figures.failed_conversations += len(load.failures)
        for failure in sorted(set(load.failures))[:5]:
            print(f"{figures.name}: {failure}", file=sys.stderr)
        if latencies:
            figures.latency_p50, figures.latency_p95 = statistics.median(latencies), percentile(latencies, 95)


def report(comanda: Figures, bare: Figures, args: argparse.Namespace) -> str:
    def row(label: str, a: str, b: str, ratio: str = "") -> str:
        return f"{label:<44} {a:>16} {b:>16} {ratio:>8}"

    lines = [
        row("", "comanda", "bare rasa init", "ratio"),
        row("channel", comanda.channel, bare.channel),
        row("messages per conversation", str(comanda.messages_per_conversation), str(bare.messages_per_conversation)),
        row(
            f"answered/s at saturation ({args.users} users)",
            f"{comanda.saturation_rate:.1f}",
            f"{bare.saturation_rate:.1f}",
            f"{100 * comanda.saturation_rate / bare.saturation_rate:.0f} %" if bare.saturation_rate else "-",
        ),
        row(f"reply p50 at {args.rate:g} conversations/s (s)", f"{comanda.latency_p50:.2f}", f"{bare.latency_p50:.2f}"),
        row(f"reply p95 at {args.rate:g} conversations/s (s)", f"{comanda.latency_p95:.2f}", f"{bare.latency_p95:.2f}"),
        row(
            "turns unanswered at the end",
            f"{comanda.unanswered}/{comanda.steady_turns}",
            f"{bare.unanswered}/{bare.steady_turns}",
        ),
        row("conversations that failed", str(comanda.failed_conversations), str(bare.failed_conversations)),
        "CPU ms per message answered (saturation):",
    ]
    for figures in (comanda, bare):
        shares = ", ".join(f"{name} {ms:.0f}" for name, ms in figures.cpu_ms_per_message.items())
        lines.append(f"  {figures.name}: {shares} (total {sum(figures.cpu_ms_per_message.values()):.0f})")
    for figures in (comanda, bare):
        if figures.profile:
            lines += [f"profile of {figures.name} at saturation:", figures.profile]
    return "\n".join(lines)


def fresh_database(url: Optional[str], log_dir: Path) -> Tuple[str, Callable[[], None]]:
    """A new database for this run (SQLite file, or a new PostgreSQL database), and how to drop it."""
    if not url:
        return f"sqlite:///{log_dir / 'comanda.db'}", lambda: None
    parsed = make_url(url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return parsed.set(database=name).render_as_string(hide_password=False), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent customers at saturation")
    parser.add_argument("--rate", type=float, default=10, help="conversations started per second, steady phase")
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--warmup", type=int, default=2, help="conversations before measuring")
    parser.add_argument("--database-url", help="PostgreSQL server for Comanda (a new database); default SQLite")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles at saturation (bench/profiles.py)")
    args = parser.parse_args()

    log_dir = BENCH_DIR / time.strftime("run-%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    database_url, drop_database = fresh_database(args.database_url, log_dir)
    os.environ["COMANDA_DATABASE_URL"] = database_url
    upgrade(database_url)
    with transaction() as session:
        load_catalog(session, bench_catalog())
    comanda, bare = comanda_stack(log_dir, database_url), bare_bot(log_dir)
    print(f"starting both (logs in {log_dir})", flush=True)
    figures = [Figures("comanda", "whatsapp", 7), Figures("bare", "rest", len(RestBot.script))]
    try:
        comanda.start()
        comanda.processes = {name_of(cmd): pid for pid, cmd in children(comanda.pid).items()}
        bare.start()
        bare.processes = {"rasa": bare.pid}
        poller = Poller()
        asyncio.run(
            measure(
                comanda,
                figures[0],
                lambda http: WhatsAppCustomer(comanda.env["BENCH_URL"], poller, http).conversation,
                args,
                poller,
            )
        )
        asyncio.run(measure(bare, figures[1], lambda http: RestBot(bare.env["BENCH_URL"], http).conversation, args))
    finally:
        comanda.stop()
        bare.stop()
        drop_database()
    print(report(figures[0], figures[1], args))
    if args.json:
        Path(args.json).write_text(json.dumps([vars(f) for f in figures], indent=2))
    return 0


def name_of(command: str) -> str:
    """rasa, actions or backoffice, from a process's command line as `comanda run` starts them."""
    if "rasa_sdk" in command or "cli.action_server" in command:  # `comanda run` starts it as cli.action_server
        return "actions"
    if "backoffice" in command:
        return "backoffice"
    return "rasa"


if __name__ == "__main__":
    sys.exit(main())

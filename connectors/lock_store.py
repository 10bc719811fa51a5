"""Rasa's ticket lock on Redis, every change one atomic script: several Rasa servers, one conversation at a time.

Rasa's own ``RedisLockStore`` reads a conversation's whole lock, adds a ticket and writes it back: two
servers that take the lock at the same moment both read the same lock, both issue the same ticket
number and both go in (RasaHQ/rasa#9213; the fix, #11256, was reverted in #11428). Here each step is a
Lua script that Redis runs alone: issuing a ticket, asking whose turn it is, giving the lock up.

- A conversation's tickets live in one Redis hash, ``<prefix>:lock:<conversation id>``: ``t:<number>``
  is a ticket and when it expires (Redis's clock, in ms). The oldest live ticket holds the lock: first
  come, first served. Ticket numbers come from Redis's clock in microseconds, so they only grow, even
  after the hash is deleted.
- Tickets are leases: the waiting and the holding server renew theirs (every poll, and every third of
  the lease while it holds the lock), so a turn may take as long as it needs, and the tickets of a
  server that died expire after one lease (COMANDA_LOCK_LEASE_SECONDS) and let the next one in.
- Redis unreachable: the turn fails at once with a ``LockError`` naming the server (never its password);
  the client reconnects by itself when Redis is back.

The lock path runs on ``redis.asyncio`` so a slow or absent Redis never stalls the server's event loop;
the synchronous ``LockStore`` methods use the same scripts.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional, TypedDict

import redis
import redis.asyncio
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from comanda.errors import ConfigError
from comanda.settings import redacted_url, setting, setting_int

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often the next in line asks whether its turn has come
MAX_POLL_SECONDS = 1.0  # those further back ask less often
SOCKET_TIMEOUT_SECONDS = 5.0


class _Timeouts(TypedDict):
    """Both Redis clients' (redis.Redis and redis.asyncio.Redis) socket timeouts, in seconds."""

    socket_timeout: float
    socket_connect_timeout: float


# Shared by every script: the time on Redis's clock, and the live tickets (expired ones removed).
_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function live(key, now)
  local fields = redis.call('HGETALL', key)
  local numbers, last = {}, 0
  for i = 1, #fields, 2 do
    if string.sub(fields[i], 1, 2) == 't:' then
      local expires = tonumber(fields[i + 1])
      if expires <= now then
        redis.call('HDEL', key, fields[i])
      else
        table.insert(numbers, tonumber(string.sub(fields[i], 3)))
        if expires > last then last = expires end
      end
    end
  end
  table.sort(numbers)
  return numbers, last
end
local function keep_until(key, count, last, now)
  if count == 0 then redis.call('DEL', key) else redis.call('PEXPIRE', key, last - now) end
end
"""

# ARGV: lease (ms). Returns the new ticket's number, as a string.
ISSUE = (
    _PRELUDE
    + """
local now = now_ms()
local numbers, last = live(KEYS[1], now)
local t = redis.call('TIME')
local previous = tonumber(redis.call('HGET', KEYS[1], 'next')) or 0
local number = string.format('%.0f', math.max(previous + 1, tonumber(t[1]) * 1000000 + tonumber(t[2])))
local expires = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'next', number, 't:' .. number, expires)
keep_until(KEYS[1], 1, math.max(last, expires), now)
return number
"""
)

# ARGV: ticket, lease (ms). Renews the ticket; returns how many tickets are before it (0: its turn), or
# -1 when it has expired.
TURN = (
    _PRELUDE
    + """
local now = now_ms()
local numbers, last = live(KEYS[1], now)
local mine = tonumber(ARGV[1])
for i, number in ipairs(numbers) do
  if number == mine then
    local expires = now + tonumber(ARGV[2])
    redis.call('HSET', KEYS[1], 't:' .. ARGV[1], expires)
    keep_until(KEYS[1], #numbers, math.max(last, expires), now)
    return i - 1
  end
end
keep_until(KEYS[1], #numbers, last, now)
return -1
"""
)

# ARGV: ticket (or nothing: only remove expired tickets). Returns how many live tickets remain.
FINISH = (
    _PRELUDE
    + """
if ARGV[1] then redis.call('HDEL', KEYS[1], 't:' .. ARGV[1]) end
local now = now_ms()
local numbers, last = live(KEYS[1], now)
keep_until(KEYS[1], #numbers, last, now)
return #numbers
"""
)


class AtomicRedisLockStore(LockStore):
    """Rasa's ``LockStore`` for several Rasa servers: endpoints.yml ``lock_store: type:
    connectors.lock_store.AtomicRedisLockStore``, Redis at COMANDA_REDIS_URL (optional ``key_prefix``)."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        url: Optional[str] = None,
        key_prefix: Optional[str] = None,
        lease_seconds: Optional[float] = None,
    ) -> None:
        options = endpoint_config.kwargs if endpoint_config else {}
        self.url = url or setting("COMANDA_REDIS_URL")
        if not self.url:
            raise ConfigError(
                "the Redis lock store needs COMANDA_REDIS_URL (redis://host:6379/0); "
                "with one Rasa server leave COMANDA_LOCK_STORE at in_memory"
            )
        self.key_prefix = str(key_prefix or options.get("key_prefix") or "comanda")
        self.lease_seconds = float(lease_seconds or setting_int("COMANDA_LOCK_LEASE_SECONDS"))
        timeouts = _Timeouts(socket_timeout=SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS)
        self._timeouts = timeouts
        self._redis = redis.Redis.from_url(self.url, **timeouts)
        self._scripts = {name: self._redis.register_script(lua) for name, lua in self._lua().items()}
        # redis.asyncio connections belong to one event loop: one client per loop that uses the store.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[str, Any]] = weakref.WeakKeyDictionary()
        super().__init__()

    @staticmethod
    def _lua() -> Dict[str, str]:
        return {"issue": ISSUE, "turn": TURN, "finish": FINISH}

    def _key(self, conversation_id: str) -> str:
        return f"{self.key_prefix}:lock:{conversation_id}"

    def _failure(self, exc: redis.RedisError) -> LockError:
        """Redis's error as Rasa's: down or slow ("unreachable"), or a command refused."""
        what = "unreachable" if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) else "error"
        return LockError(f"lock store {what} at {redacted_url(self.url)}: {type(exc).__name__}: {exc}")

    # --- the lock Rasa takes for every message (async) --------------------------------------------

    def _async_scripts(self) -> Dict[str, Any]:
        loop = asyncio.get_running_loop()
        if loop not in self._async:
            client = redis.asyncio.Redis.from_url(self.url, **self._timeouts)
            self._async[loop] = {name: client.register_script(lua) for name, lua in self._lua().items()}
        return self._async[loop]

    async def _run(self, name: str, conversation_id: str, *args: Any) -> Any:
        try:
            return await self._async_scripts()[name](keys=[self._key(conversation_id)], args=list(args))
        except redis.RedisError as exc:
            raise self._failure(exc) from exc

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: Optional[float] = None,
        wait_time_in_seconds: Optional[float] = None,
    ) -> AsyncIterator[TicketLock]:
        """Hold the conversation's lock: wait for the tickets issued before ours, renew ours meanwhile.

        ``lock_lifetime`` is the lease (default COMANDA_LOCK_LEASE_SECONDS, not Rasa's 60 s: a live server
        renews it); ``wait_time_in_seconds`` how often the next in line checks (default 50 ms).
        """
        lease = float(lock_lifetime or self.lease_seconds)
        lease_ms = int(lease * 1000)
        poll = float(wait_time_in_seconds or POLL_SECONDS)
        ticket = str(int(await self._run("issue", conversation_id, lease_ms)))
        renewing: Optional[asyncio.Task] = None
        try:
            while True:
                before = int(await self._run("turn", conversation_id, ticket, lease_ms))
                if before == 0:
                    break
                if before < 0:
                    raise LockError(
                        f"ticket {ticket} for conversation '{conversation_id}' expired while it waited "
                        f"(no renewal for {lease:g} s)"
                    )
                await asyncio.sleep(min(poll * before, MAX_POLL_SECONDS, lease / 3))
            renewing = asyncio.create_task(self._renew(conversation_id, ticket, lease))
            yield TicketLock(conversation_id, deque([Ticket(int(ticket), time.time() + lease)]))
        finally:
            if renewing is not None:
                renewing.cancel()
            try:
                await self._run("finish", conversation_id, ticket)
            except LockError as exc:
                log.warning("lock for %s not released (it expires by itself): %s", conversation_id, exc)

    async def _renew(self, conversation_id: str, ticket: str, lease: float) -> None:
        """Keep the ticket alive while the turn lasts; a lost ticket is reported, the turn carries on."""
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if int(await self._run("turn", conversation_id, ticket, int(lease * 1000))) != 0:
                    log.error("lost the lock of conversation %s (ticket %s expired)", conversation_id, ticket)
                    return
            except LockError as exc:
                log.warning("could not renew the lock of %s: %s", conversation_id, exc)

    # --- Rasa's synchronous LockStore interface, on the same scripts ------------------------------

    def _run_sync(self, name: str, conversation_id: str, *args: Any) -> Any:
        try:
            return self._scripts[name](keys=[self._key(conversation_id)], args=list(args))
        except redis.RedisError as exc:
            raise self._failure(exc) from exc

    def issue_ticket(self, conversation_id: str, lock_lifetime: Optional[float] = None) -> int:
        lease_ms = int(float(lock_lifetime or self.lease_seconds) * 1000)
        return int(self._run_sync("issue", conversation_id, lease_ms))

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        """The conversation's live tickets, oldest first (a snapshot: it may change at once)."""
        try:
            fields = self._redis.hgetall(self._key(conversation_id))
        except redis.RedisError as exc:
            raise self._failure(exc) from exc
        tickets = sorted(
            (Ticket(int(name[2:]), int(expires) / 1000) for name, expires in fields.items() if name[:2] == b"t:"),
            key=lambda ticket: ticket.number,
        )
        return TicketLock(conversation_id, deque(tickets)) if tickets else None

    def save_lock(self, lock: TicketLock) -> None:
        raise LockError(
            "AtomicRedisLockStore changes tickets one at a time; writing a whole lock is the race it avoids"
        )

    def delete_lock(self, conversation_id: str) -> None:
        try:
            deleted = self._redis.delete(self._key(conversation_id))
        except redis.RedisError as exc:
            raise self._failure(exc) from exc
        self._log_deletion(conversation_id, bool(deleted))

    def update_lock(self, conversation_id: str) -> None:
        self._run_sync("finish", conversation_id)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._run_sync("finish", conversation_id, str(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket up; the hash goes when no ticket is left (in the same script)."""
        self.finish_serving(conversation_id, ticket_number)

    def is_someone_waiting(self, conversation_id: str) -> bool:
        return self.get_lock(conversation_id) is not None

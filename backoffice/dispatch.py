"""The back office's background work: the payment sweep, the sandbox's webhooks, the notification dispatcher,
the daily export of the reports.

- Every COMANDA_PAYMENT_SWEEP_SECONDS: orders whose stock hold ran out unpaid expire
  (comanda.services.payments.expire_due).
- Every COMANDA_SANDBOX_WEBHOOK_POLL_SECONDS, in sandbox mode: the sandbox's webhooks not delivered yet
  (a post that failed, a back office that died after Pay) are posted again, with backoff
  (integrations.payments.sandbox_webhooks), on the checkout's own threads: the post waits on this very
  back office.
- Every COMANDA_PAYMENT_SWEEP_SECONDS too: returns whose money is due and was never asked for (approved in the
  chat where the business refunds on approval, received by a process that died before settling) are settled
  (comanda.services.returns.settle); a failed refund is left to staff.
- Every COMANDA_NOTIFY_POLL_SECONDS: queued notifications go to Rasa's external events API,
  ``POST {COMANDA_RASA_URL}/conversations/{id}/trigger_intent?output_channel=latest&token=…`` with
  ``{"name": "EXTERNAL_order_update", "entities": {"order_id": …, "event": …}}``; Rasa runs the
  intent's rule and the customer hears it on WhatsApp, and the conversation's history keeps it. Rasa
  down (network errors, 5xx, 401/403 while the token is being fixed, 409, 429): retried with backoff;
  other refusals are final. The token goes in the query as Rasa's token auth wants, and is never
  logged (errors are logged without the URL).
- Every COMANDA_EXPORT_POLL_SECONDS, when COMANDA_EXPORT_DIR or COMANDA_EXPORT_EMAIL is set: each business's
  previous day, exported once across replicas (comanda.services.report_export).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Callable, Optional
from urllib.parse import quote

import requests
from sanic import Sanic

from backoffice import handoffs
from backoffice.payments import SELF_POSTS, deliver_sandbox_webhooks
from comanda.concurrency import in_thread
from comanda.db import transaction
from comanda.services import notifications, payments, report_export, returns
from comanda.settings import setting, setting_int
from integrations.cfdi import issuer
from integrations.email.smtp import mailer_from_settings
from integrations.payments import payment_provider, sandbox

log = logging.getLogger(__name__)

RASA_TIMEOUT_SECONDS = 10
RETRYABLE = {401, 403, 409, 429}
# Rasa's web server takes the conversation id from the path as it is, undecoded: the characters of
# our ids ("centro:whatsapp:+5255…") go as they are, anything else is escaped.
SENDER_SAFE = ":+@.-_~"
TASKS = (
    "payments_sweep",
    "notifications_dispatch",
    "handoffs_sweep",
    "sandbox_webhooks",
    "returns_settle",
    "reports_export",
)


def deliver_due(rasa_url: str, token: str, limit: int = 20) -> int:
    """Deliver what is due, each row once, up to ``limit``; how many Rasa accepted. Rows are claimed one at a
    time, right before their post: a dispatcher killed mid-post leaves only that row of unknown fate (given up,
    see comanda.services.notifications), where a batch claimed at once lost every row it had not reached yet
    (customers who paid never told)."""
    delivered = 0
    for _ in range(limit):
        with transaction() as session:
            due = notifications.claim_due(session, 1)
        if not due:
            break
        delivered += deliver(rasa_url, token, due[0])
    return delivered


def deliver(rasa_url: str, token: str, item: notifications.Due) -> bool:
    """Post one claimed row to Rasa's external events API and record the outcome; whether Rasa accepted it."""
    url = f"{rasa_url.rstrip('/')}/conversations/{quote(item.conversation_id, safe=SENDER_SAFE)}/trigger_intent"
    try:
        answer = requests.post(
            url,
            params={"output_channel": "latest", "token": token},
            json=item.trigger(),
            timeout=RASA_TIMEOUT_SECONDS,
        )
        problem = (
            None
            if answer.ok
            else (
                f"Rasa answered {answer.status_code}: {answer.text[:300]}",
                answer.status_code >= 500 or answer.status_code in RETRYABLE,
            )
        )
    except requests.RequestException as exc:
        problem = (f"Rasa unreachable ({type(exc).__name__})", True)
    with transaction() as session:
        if problem is None:
            notifications.mark_sent(session, item)
            return True
        notifications.mark_failed(session, item, *problem)
        return False


def dispatch_once() -> int:
    return deliver_due(setting("COMANDA_RASA_URL"), setting("COMANDA_RASA_TOKEN"))


def sweep_once() -> int:
    return len(payments.expire_due(payment_provider))


def settle_returns_once() -> int:
    with transaction() as session:
        due = returns.due_for_settlement(session)
    moved = returns.settle_each(due, lambda return_id: returns.settle(return_id, payment_provider, issuer(), "system"))
    return moved + returns.issue_due_credit_notes(issuer(), "system")


def export_once() -> int:
    """Yesterday's reports, once per business whichever replica gets there first (comanda.services.report_export)."""
    return report_export.export_due(mailer_from_settings())


async def every(seconds: float, work: Callable[[], int], executor: Optional[Executor] = None) -> None:
    """Run ``work`` in a thread pool forever; a failure is logged and the next round tries again."""
    while True:
        try:
            await in_thread(work, executor=executor)
        except Exception:  # noqa: BLE001 - a background loop must outlive one bad round
            log.exception("%s failed; trying again in %s s", getattr(work, "__name__", work), seconds)
        await asyncio.sleep(seconds)


def mount(app: Sanic) -> None:
    @app.after_server_start
    async def start(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        with transaction() as session:
            notifications.abandon_interrupted(session)
        app.add_task(every(setting_int("COMANDA_PAYMENT_SWEEP_SECONDS"), sweep_once), name=TASKS[0])
        app.add_task(every(float(setting("COMANDA_NOTIFY_POLL_SECONDS")), dispatch_once), name=TASKS[1])
        app.add_task(every(float(setting("COMANDA_HANDOFF_SWEEP_SECONDS")), handoffs.sweep_once), name=TASKS[2])
        app.add_task(every(setting_int("COMANDA_PAYMENT_SWEEP_SECONDS"), settle_returns_once), name=TASKS[4])
        if setting("COMANDA_PAYMENT_PROVIDER") == sandbox.NAME:
            seconds = float(setting("COMANDA_SANDBOX_WEBHOOK_POLL_SECONDS"))
            app.add_task(every(seconds, deliver_sandbox_webhooks, SELF_POSTS), name=TASKS[3])
        if report_export.configured():
            app.add_task(every(float(setting("COMANDA_EXPORT_POLL_SECONDS")), export_once), name=TASKS[5])

    @app.before_server_stop
    async def stop(app: Sanic, _loop: asyncio.AbstractEventLoop) -> None:
        for name in TASKS:
            await app.cancel_task(name, raise_exception=False)

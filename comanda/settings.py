"""The one place for settings: environment variables with documented defaults.

Every setting Comanda reads is declared in ``SETTINGS`` below; ``comanda settings`` prints them
and the README lists them. Read a value with ``setting("NAME")``; nothing else reads ``os.environ``
for Comanda settings.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: Callable[[], str]
    default_doc: str
    secret: bool = False


def _home() -> Path:
    return Path(os.environ.get("COMANDA_HOME") or PROJECT_ROOT)


def _var_dir() -> Path:
    return _home() / "var"


def _generated_secret(filename: str) -> Callable[[], str]:
    """A secret created once on first use and kept under var/, so a fresh clone needs no set-up."""

    def make() -> str:
        path = _var_dir() / "secrets" / filename
        if not path.exists():
            _write_secret(path, secrets.token_urlsafe(32))
        return path.read_text().strip()

    return make


def _write_secret(path: Path, value: str) -> None:
    """Only the owner reads secrets: the folder is 0700, the file 0600 from its first byte. The file
    is written aside and linked into place, so processes starting together all read one complete
    value (the first link wins)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: mode 0600
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(value)
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)


def _const(value: str) -> Callable[[], str]:
    return lambda: value


# A CLABE with a valid check digit that belongs to nobody: SPEI instructions in the sandbox demo.
DEMO_SPEI_CLABE = "646180000000000009"

_DEFINITIONS = [
    Setting(
        "COMANDA_HOME",
        "Project folder: data/, models/ and var/ live here.",
        lambda: str(PROJECT_ROOT),
        "the checkout's root",
    ),
    Setting(
        "COMANDA_DATABASE_URL",
        "SQLAlchemy URL of the one database (Comanda's tables and Rasa's tracker store).",
        lambda: f"sqlite:///{_var_dir() / 'comanda.db'}",
        "sqlite:///var/comanda.db",
    ),
    Setting(
        "COMANDA_DEFAULT_STORE",
        "Store used when a conversation does not name one (shell, REST).",
        _const("centro"),
        "centro",
    ),
    Setting(
        "COMANDA_CATALOG",
        "Demo business loaded by `comanda seed --demo`.",
        lambda: str(_home() / "data" / "demo" / "catalog.yml"),
        "data/demo/catalog.yml",
    ),
    Setting("COMANDA_RASA_PORT", "Port of the Rasa server.", _const("5005"), "5005"),
    Setting("COMANDA_ACTIONS_PORT", "Port of the Rasa action server.", _const("5055"), "5055"),
    Setting(
        "COMANDA_RASA_URL",
        "Base URL other processes use to reach the Rasa server's HTTP API.",
        lambda: f"http://127.0.0.1:{setting('COMANDA_RASA_PORT')}",
        "http://127.0.0.1:5005",
    ),
    Setting(
        "COMANDA_ACTIONS_URL",
        "Webhook the Rasa server calls to run custom actions.",
        lambda: f"http://127.0.0.1:{setting('COMANDA_ACTIONS_PORT')}/webhook",
        "http://127.0.0.1:5055/webhook",
    ),
    Setting(
        "COMANDA_ACTIONS_HOST",
        "Interface the action server listens on. Keep 127.0.0.1 when the Rasa server runs on the same "
        "machine; on several hosts use a private address (never a public one) with COMANDA_ACTIONS_TOKEN "
        "set to the same value on both sides, and HTTPS between them.",
        _const("127.0.0.1"),
        "127.0.0.1",
    ),
    Setting(
        "COMANDA_ACTIONS_TOKEN",
        "Shared secret the Rasa server sends the action server (Authorization: Bearer, endpoints.yml); "
        "the action server refuses every call without it.",
        _generated_secret("actions-token"),
        "random, kept in var/secrets/actions-token",
        secret=True,
    ),
    Setting(
        "COMANDA_RASA_MAX_BODY_BYTES",
        "Largest request body the Rasa server reads (webhooks, HTTP API); a larger one gets 413 before "
        "its body is read.",
        _const("1048576"),
        "1048576 (1 MiB)",
    ),
    Setting(
        "COMANDA_ACTIONS_MAX_BODY_BYTES",
        "Largest request body the action server reads (a tracker and the domain); a larger one gets 413.",
        _const("16777216"),
        "16777216 (16 MiB)",
    ),
    Setting(
        "COMANDA_BACKOFFICE_PORT",
        "Port of the back-office web app (simulator, webhooks, staff console).",
        _const("5080"),
        "5080",
    ),
    Setting(
        "COMANDA_BACKOFFICE_URL",
        "Public base URL of the back office (payment pages, simulator).",
        lambda: f"http://127.0.0.1:{setting('COMANDA_BACKOFFICE_PORT')}",
        "http://127.0.0.1:5080",
    ),
    Setting(
        "COMANDA_RASA_TOKEN",
        "Token that protects the Rasa server's HTTP API.",
        _generated_secret("rasa-token"),
        "random, kept in var/secrets/rasa-token",
        secret=True,
    ),
    Setting("COMANDA_RASA_VENV", "Virtual environment of the Rasa server.", lambda: str(_home() / ".venv"), ".venv"),
    Setting(
        "COMANDA_ACTIONS_VENV",
        "Virtual environment of the action server and back office.",
        lambda: str(_home() / ".venv-actions"),
        ".venv-actions",
    ),
    Setting("COMANDA_LOG_LEVEL", "Log level of every Comanda process.", _const("INFO"), "INFO"),
    Setting(
        "COMANDA_SIMULATOR",
        "Start the WhatsApp simulator with `comanda run` and point the connector at it "
        "unless the WHATSAPP_* variables are set (1/0).",
        _const("1"),
        "1",
    ),
    Setting(
        "WHATSAPP_VERIFY_TOKEN",
        "Token Meta echoes when it verifies the webhook (you choose it in the app).",
        _const(""),
        "empty; `comanda run` uses a demo token with the simulator",
        secret=True,
    ),
    Setting(
        "WHATSAPP_APP_SECRET",
        "Meta app secret: webhooks are signed with it (X-Hub-Signature-256).",
        _const(""),
        "empty; `comanda run` uses a demo secret with the simulator",
        secret=True,
    ),
    Setting(
        "WHATSAPP_ACCESS_TOKEN",
        "Bearer token for the Graph API (a system user's permanent token).",
        _const(""),
        "empty; `comanda run` uses a demo token with the simulator",
        secret=True,
    ),
    Setting(
        "WHATSAPP_GRAPH_URL",
        "Graph API base URL, with version.",
        _const("https://graph.facebook.com/v21.0"),
        "https://graph.facebook.com/v21.0",
    ),
    Setting(
        "WHATSAPP_REENGAGEMENT_TEMPLATE",
        "Approved template sent when the 24-hour window has closed (one body parameter: the store name).",
        _const("comanda_reengagement"),
        "comanda_reengagement",
    ),
    Setting(
        "WHATSAPP_MESSAGES_PER_SECOND",
        "Throughput tier of the business number: the outbox sends at most this many messages a second "
        "per number (Meta's default tier is 80).",
        _const("80"),
        "80",
    ),
    Setting(
        "COMANDA_INBOX_LEASE_SECONDS",
        "How long an acknowledged WhatsApp message stays with the Rasa server that holds it unless renewed "
        "(every third of it, while that server lives); an expired one is answered by any replica.",
        _const("30"),
        "30",
    ),
    Setting(
        "COMANDA_TURN_RETRY_SECONDS",
        "How long a WhatsApp turn whose custom action failed (action server down or erroring) is retried, "
        "with backoff, before the customer is told and the message parked for staff.",
        _const("60"),
        "60",
    ),
    Setting(
        "COMANDA_CRASH_AT",
        "Testing only: the named point (comanda/crash_points.py) where the process kills itself, as kill -9 "
        "would (tests/chaos/). Never set it in production.",
        _const(""),
        "empty: never",
    ),
    Setting("TWILIO_ACCOUNT_SID", "Twilio account for the Twilio WhatsApp channel (see README).", _const(""), "empty"),
    Setting(
        "TWILIO_AUTH_TOKEN",
        "Twilio auth token: signs Twilio's webhooks (X-Twilio-Signature).",
        _const(""),
        "empty",
        secret=True,
    ),
    Setting(
        "TWILIO_WHATSAPP_NUMBER",
        "The shop's WhatsApp sender on Twilio, e.g. whatsapp:+14155238886.",
        _const(""),
        "empty",
    ),
    # --- CFDI invoices: PAC, CSD, e-mail, document links ---
    Setting(
        "COMANDA_CFDI_PAC",
        "Who stamps invoices: local (sealed, not stamped: test documents only), facturapi or finkok.",
        _const("local"),
        "local",
    ),
    Setting(
        "COMANDA_CFDI_CSD_DIR",
        "Folder with the issuer's CSD: <basename>.cer and .key (basename: the business's issuer.csd).",
        lambda: str(_home() / "data" / "demo" / "csd"),
        "data/demo/csd (SAT's public test CSD)",
    ),
    Setting(
        "COMANDA_CFDI_CSD_PASSWORD",
        "Password of the CSD's private key.",
        _const(""),
        "empty: read from <basename>.txt beside the key (the demo's)",
        secret=True,
    ),
    Setting("COMANDA_CFDI_PAC_TIMEOUT", "Seconds to wait for the PAC before giving up.", _const("30"), "30"),
    Setting(
        "FACTURAPI_API_KEY",
        "Facturapi secret key (sk_test_… or sk_live_…) of the issuer's organization.",
        _const(""),
        "empty",
        secret=True,
    ),
    Setting(
        "FACTURAPI_URL", "Facturapi API base URL.", _const("https://www.facturapi.io/v2"), "https://www.facturapi.io/v2"
    ),
    Setting("FINKOK_USERNAME", "Finkok account user.", _const(""), "empty"),
    Setting("FINKOK_PASSWORD", "Finkok account password.", _const(""), "empty", secret=True),
    Setting(
        "FINKOK_URL",
        "Finkok host: the demo (test) one, or https://facturacion.finkok.com for production.",
        _const("https://demo-facturacion.finkok.com"),
        "https://demo-facturacion.finkok.com",
    ),
    Setting(
        "COMANDA_SMTP_HOST",
        "SMTP server that e-mails invoices and purchase orders.",
        _const(""),
        "empty: invoices and purchase orders are not e-mailed",
    ),
    Setting("COMANDA_SMTP_PORT", "SMTP port.", _const("587"), "587"),
    Setting("COMANDA_SMTP_USER", "SMTP user.", _const(""), "empty: no login"),
    Setting("COMANDA_SMTP_PASSWORD", "SMTP password.", _const(""), "empty", secret=True),
    Setting(
        "COMANDA_SMTP_FROM", "Sender address of invoice e-mails.", _const("facturas@localhost"), "facturas@localhost"
    ),
    Setting(
        "COMANDA_SMTP_SECURITY",
        "starttls, ssl (implicit TLS, usually port 465) or none.",
        _const("starttls"),
        "starttls",
    ),
    Setting(
        "COMANDA_DOCUMENT_LINK_SECRET",
        "HMAC key that signs invoice download links.",
        _generated_secret("document-link-secret"),
        "random, kept in var/secrets/document-link-secret",
        secret=True,
    ),
    Setting(
        "COMANDA_DOCUMENT_LINK_MINUTES", "How long an invoice download link works.", _const("1440"), "1440 (a day)"
    ),
    # --- payments, the order queue, notifications ---
    Setting(
        "COMANDA_PAYMENT_PROVIDER",
        "Who collects card and OXXO payments: sandbox (Comanda's own hosted "
        "checkout, no account needed), stripe or mercadopago.",
        _const("sandbox"),
        "sandbox",
    ),
    Setting(
        "COMANDA_SANDBOX_WEBHOOK_SECRET",
        "HMAC key the sandbox checkout signs its webhooks with.",
        _generated_secret("sandbox-webhook-secret"),
        "random, kept in var/secrets/sandbox-webhook-secret",
        secret=True,
    ),
    Setting(
        "COMANDA_WEBHOOK_TOLERANCE_SECONDS",
        "How old a signed payment webhook may be before it is refused "
        "as a replay (Stripe's signature timestamp, Mercado Pago's ts, the sandbox's).",
        _const("300"),
        "300",
    ),
    Setting("STRIPE_SECRET_KEY", "Stripe secret API key (sk_test_… or sk_live_…).", _const(""), "empty", secret=True),
    Setting(
        "STRIPE_WEBHOOK_SECRET",
        "Signing secret of the Stripe webhook endpoint (whsec_…).",
        _const(""),
        "empty",
        secret=True,
    ),
    Setting(
        "STRIPE_API_URL",
        "Stripe API base URL (tests point it at a local fake).",
        _const("https://api.stripe.com"),
        "https://api.stripe.com",
    ),
    Setting(
        "MERCADOPAGO_ACCESS_TOKEN", "Mercado Pago access token (TEST-… or APP_USR-…).", _const(""), "empty", secret=True
    ),
    Setting(
        "MERCADOPAGO_WEBHOOK_SECRET",
        "Secret signature of the Mercado Pago webhook (Your integrations → Webhooks).",
        _const(""),
        "empty",
        secret=True,
    ),
    Setting(
        "MERCADOPAGO_API_URL",
        "Mercado Pago API base URL (tests point it at a local fake).",
        _const("https://api.mercadopago.com"),
        "https://api.mercadopago.com",
    ),
    Setting(
        "COMANDA_SPEI_CLABE",
        "The business's 18-digit CLABE, sent to customers who pay by SPEI transfer.",
        lambda: DEMO_SPEI_CLABE if setting("COMANDA_PAYMENT_PROVIDER") == "sandbox" else "",
        f"empty; {DEMO_SPEI_CLABE} (a demo CLABE, no real account) while COMANDA_PAYMENT_PROVIDER=sandbox",
    ),
    Setting(
        "COMANDA_SPEI_BANK",
        "Bank of that CLABE, as the customer's banking app names it.",
        _const(""),
        "empty: the message names no bank",
    ),
    Setting(
        "COMANDA_SPEI_BENEFICIARY",
        "Account holder the customer sees in the transfer.",
        _const(""),
        "empty: the business's name",
    ),
    Setting(
        "COMANDA_PAYMENT_SWEEP_SECONDS",
        "How often the back office expires orders whose stock hold ran out.",
        _const("15"),
        "15",
    ),
    Setting(
        "COMANDA_NOTIFY_POLL_SECONDS",
        "How often the back office delivers queued customer notifications to Rasa.",
        _const("1"),
        "1",
    ),
    Setting(
        "COMANDA_BACKOFFICE_MAX_BODY_BYTES",
        "Largest request body the back office reads; a larger one is answered 413 before it is read "
        "(payment webhooks are a few kilobytes).",
        _const("1048576"),
        "1048576 (1 MiB)",
    ),
    Setting(
        "COMANDA_SANDBOX_WEBHOOK_POLL_SECONDS",
        "How often the back office retries the sandbox's webhooks that were not delivered yet (sandbox only).",
        _const("2"),
        "2",
    ),
    Setting(
        "COMANDA_HANDOFF_SWEEP_SECONDS",
        "How often the back office looks for handoff tickets nobody took in the business's waiting time.",
        _const("30"),
        "30",
    ),
    # --- staff console: sessions, logins, the live queue ---
    Setting(
        "COMANDA_CONSOLE_SESSION_IDLE_MINUTES",
        "A console session unused this long ends (the live queue display keeps its session in use).",
        _const("720"),
        "720 (12 hours)",
    ),
    Setting(
        "COMANDA_CONSOLE_SESSION_HOURS",
        "A console session ends this long after the login, used or not.",
        _const("72"),
        "72",
    ),
    Setting(
        "COMANDA_CONSOLE_SECURE_COOKIE",
        "Mark the console's session cookie Secure: auto (when the request came over HTTPS), 1 or 0.",
        _const("auto"),
        "auto",
    ),
    Setting(
        "COMANDA_BACKOFFICE_PROXIES",
        "How many reverse proxies (load balancers) stand in front of the back office: the client's "
        "address and HTTPS are then read from their X-Forwarded-For / X-Forwarded-Proto headers.",
        _const("0"),
        "0 (clients connect directly)",
    ),
    Setting(
        "COMANDA_LOGIN_THROTTLE_MINUTES",
        "Wrong console passwords are counted over this many minutes.",
        _const("15"),
        "15",
    ),
    Setting(
        "COMANDA_LOGIN_MAX_FAILURES_PER_ACCOUNT",
        "Wrong passwords for one account in that window before its logins wait.",
        _const("5"),
        "5",
    ),
    Setting(
        "COMANDA_LOGIN_MAX_FAILURES_PER_ADDRESS",
        "Wrong passwords (or unknown accounts) from one address in that window before its logins wait.",
        _const("20"),
        "20",
    ),
    Setting(
        "COMANDA_CONSOLE_POLL_SECONDS",
        "How often each back office looks in the database for queue changes to push to open displays.",
        _const("1"),
        "1",
    ),
    Setting(
        "COMANDA_MEDIA_MAX_BYTES",
        "Largest file a customer sent that the inbox downloads from the Graph API and keeps.",
        _const("16777216"),
        "16777216 (16 MiB, WhatsApp's limit for audio and video)",
    ),
    Setting(
        "COMANDA_QUEUE_RECALL_MINUTES",
        "How long after a queue move it can be recalled (undone) from the display or the API.",
        _const("15"),
        "15",
    ),
    # --- several replicas: Rasa's lock store on Redis (see "Beyond one machine" in the README) ---
    Setting(
        "COMANDA_REDIS_URL",
        "Redis that keeps each conversation's lock when several Rasa servers share the conversations "
        "(redis://[:password@]host:6379/0, rediss:// for TLS).",
        _const(""),
        "empty: one Rasa server, Rasa's in-memory lock store",
        secret=True,
    ),
    Setting(
        "COMANDA_LOCK_STORE",
        "The lock store endpoints.yml gives Rasa: in_memory (one Rasa server) or "
        "connectors.lock_store.AtomicRedisLockStore (any number of Rasa servers, on COMANDA_REDIS_URL).",
        lambda: "connectors.lock_store.AtomicRedisLockStore" if setting("COMANDA_REDIS_URL") else "in_memory",
        "connectors.lock_store.AtomicRedisLockStore when COMANDA_REDIS_URL is set, else in_memory",
    ),
    Setting(
        "COMANDA_LOCK_LEASE_SECONDS",
        "A Rasa server renews its conversation locks while it works; one that dies loses them after this long.",
        _const("10"),
        "10",
    ),
    Setting(
        "COMANDA_CLUSTER_DATABASE_URL",
        "The PostgreSQL database `make run-cluster` gives every replica (created when missing).",
        _const("postgresql://postgres@127.0.0.1:5432/comanda_cluster"),
        "postgresql://postgres@127.0.0.1:5432/comanda_cluster",
        secret=True,
    ),
    Setting(
        "COMANDA_CLUSTER_REDIS_URL",
        "The Redis `make run-cluster` gives the Rasa servers' lock store.",
        _const("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0",
        secret=True,
    ),
    Setting(
        "COMANDA_CLUSTER_REPLICAS",
        "How many Rasa servers, action servers and back offices `make run-cluster` starts (each).",
        _const("2"),
        "2",
    ),
    # --- reports: the daily export ---
    Setting(
        "COMANDA_EXPORT_DIR",
        "Folder the back office writes each business's daily reports to, as CSV files of the previous day "
        "(<folder>/<business>/<YYYY-MM-DD>/<store or all>/<report>-<table>.csv).",
        _const(""),
        "empty: no files",
    ),
    Setting(
        "COMANDA_EXPORT_EMAIL",
        "Who gets the daily reports by e-mail (a zip of the CSV files, over COMANDA_SMTP_*): owners (every "
        "active owner of the business) or a comma-separated list of addresses.",
        _const(""),
        "empty: not e-mailed",
    ),
    Setting(
        "COMANDA_EXPORT_POLL_SECONDS",
        "How often the back office looks for a finished day whose reports were not exported yet.",
        _const("300"),
        "300",
    ),
    # --- review inbox and training (owners teach the bot) ---
    Setting(
        "COMANDA_REVIEW_CONFIDENCE",
        "A customer's message whose intent confidence is under this goes to the review inbox.",
        _const("0.6"),
        "0.6",
    ),
    Setting(
        "COMANDA_REVIEW_MARGIN",
        "A message whose two likeliest intents are closer than this goes to the review inbox (ambiguous).",
        _const("0.15"),
        "0.15",
    ),
    Setting(
        "COMANDA_RASA_SERVERS",
        "Comma-separated base URLs of every running Rasa server: `comanda train` loads the new model on "
        "each through Rasa's HTTP API (PUT /model), with COMANDA_RASA_TOKEN.",
        lambda: setting("COMANDA_RASA_URL"),
        "COMANDA_RASA_URL (the local server)",
    ),
    Setting(
        "COMANDA_MODELS_DIR",
        "Where `comanda train` keeps every model it trained (the active one and the one before, for "
        "--rollback); every Rasa server must read the same path.",
        lambda: str(_home() / "models"),
        "models/ in COMANDA_HOME",
    ),
]

# What `comanda run` uses when the WhatsApp variables are not set: the local simulator.
SIMULATOR_WHATSAPP = {
    "WHATSAPP_VERIFY_TOKEN": "comanda-demo-verify-token",
    "WHATSAPP_APP_SECRET": "comanda-demo-app-secret",
    "WHATSAPP_ACCESS_TOKEN": "comanda-demo-access-token",
}


def real_whatsapp_credentials() -> List[str]:
    """The WhatsApp secrets set to something other than the simulator's demo values: a real Meta app's.
    With any of them the simulator must not run (it would sign webhooks anyone could forge)."""
    return [
        name
        for name in ("WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")
        if setting(name) not in ("", SIMULATOR_WHATSAPP[name])
    ]


def simulator_graph_url() -> str:
    return f"{setting('COMANDA_BACKOFFICE_URL')}/simulator/graph/v21.0"


SETTINGS: Dict[str, Setting] = {s.name: s for s in _DEFINITIONS}


def setting(name: str) -> str:
    """The value of a declared setting: the environment wins, else its default."""
    definition = SETTINGS[name]
    value = os.environ.get(name)
    if value is not None and value != "":
        return value
    return definition.default()


def setting_int(name: str) -> int:
    value = setting(name)
    try:
        return int(value)
    except ValueError:
        from comanda.errors import ConfigError

        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def redacted_url(url: str) -> str:
    """A URL fit for messages and logs: its password (if any) masked."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:***@", url)


def home() -> Path:
    return Path(setting("COMANDA_HOME"))


def database_url(override: Optional[str] = None) -> str:
    return override or setting("COMANDA_DATABASE_URL")

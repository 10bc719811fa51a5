"""What the console ships: the vendored JavaScript is byte for byte what SOURCES.md says (version,
checksum, licence), and every label its templates use exists in both languages."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from backoffice.console.returns_pages import SECTIONS
from backoffice.console.web import NAV, STATIC
from comanda.enums import (
    ConsentKind,
    HandoffReason,
    HandoffStatus,
    ItemCondition,
    OrderStatus,
    PurchaseOrderStatus,
    ReturnOutcome,
    ReturnReason,
    ReturnStatus,
    ReviewStatus,
    StaffRole,
    StaffTask,
    StockAdjustmentReason,
    TrainingRunStatus,
)
from comanda.i18n import LANGUAGES, catalogue
from comanda.services.order_queue import STAFF_TARGETS, STAGES

TEMPLATES = STATIC.parent / "templates"
VENDOR = STATIC / "vendor"


def test_vendored_files_match_their_recorded_checksums_and_carry_their_licences():
    sources = (VENDOR / "SOURCES.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([\d.]+) \| .* \| `([0-9a-f]{64})` \|$", sources, re.M)
    assert {name for name, *_ in rows} == {"htmx.min.js", "htmx-ext-sse.min.js", "chart.umd.js"}
    versions = {}
    for name, package, version, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        assert (VENDOR / f"LICENSE.{package}").read_text().strip(), package
        versions[package] = version
    assert f'version:"{versions["htmx.org"]}"' in (VENDOR / "htmx.min.js").read_text()


def test_templates_load_nothing_from_outside_and_every_label_exists_in_both_languages():
    labels = catalogue()
    used = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r'(src|href)="(https?:)?//', text), template.name
        used |= {key for key in re.findall(r"t\('([a-z0-9_.]+)'", text) if not key.endswith(".")}  # not prefixes
    families = {
        "console.nav.": [key for key, _, _ in NAV],
        "console.role.": StaffRole.values(),
        "console.language.": LANGUAGES,
        "console.queue.column.": [s.value for s in STAGES],
        "console.queue.state.": [s.value for s in (*STAGES, *STAFF_TARGETS)],
        "console.queue.bump.": [OrderStatus.PREPARING, OrderStatus.READY, OrderStatus.PICKED_UP, OrderStatus.DELIVERED],
        "console.queue.": ["pickup", "delivery"],
        "console.purchasing.status.": PurchaseOrderStatus.values(),
        "console.stock.reason.": StockAdjustmentReason.values(),
        "console.customers.consent.": ConsentKind.values(),
        "console.customers.status.": [OrderStatus.PENDING_PAYMENT, OrderStatus.EXPIRED],
        "console.review.run.": TrainingRunStatus.values(),
        "console.review.done.": [ReviewStatus.CORRECT, ReviewStatus.CHANGED, ReviewStatus.FIXED],
        "console.review.report.": ["new", "active", "eval"],
        "console.review.who.": ["user", "bot"],
        "console.review.figure.": ["intent_accuracy", "order_line_exact_match"],
        "console.returns.section.": [key for key, _ in SECTIONS],
        "console.returns.outcome.": ReturnOutcome.values(),
        "console.returns.reason.": ReturnReason.values(),
        "console.returns.condition.": ItemCondition.values(),
        "console.returns.done.": ReturnStatus.values(),
        "console.returns.needs.": StaffTask.values(),
        "console.inbox.status.": HandoffStatus.values(),
        "console.inbox.reason.": HandoffReason.values(),
        "console.inbox.tab.": [*HandoffStatus.values(), "mine"],
        "console.inbox.from.": ["customer", "bot", "staff"],
        "console.inbox.delivery.": ["sending", "sent", "delivered", "read", "failed"],
        "console.inbox.done.": ["assigned", "claimed", "noted", "resolved", "sent"],
        "console.inbox.error.": ["handoff_resolved", "handoff_taken", "window_closed"],
        "console.inbox.media.": ["audio", "document", "image", "sticker", "video", "voice"],
    }
    used |= {f"{prefix}{value}" for prefix, values in families.items() for value in values}
    missing = sorted(key for key in used if key not in labels)
    assert missing == [], missing
    assert all(set(labels[key]) == set(LANGUAGES) and all(labels[key].values()) for key in used)
    unused = sorted(k for k in labels if k.startswith("console.") and k not in used)
    python = "".join(p.read_text(encoding="utf-8") for p in Path(STATIC.parent).glob("*.py"))
    assert [k for k in unused if k not in python] == []

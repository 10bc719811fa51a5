"""No bare status literals: outside comanda/enums.py a status, method, kind or reason is spelt through its enum.

An AST walk over the packages (and a look at the console's templates) finds a string that is one of an enum's
values where it meets a column of that vocabulary: compared with it, passed or assigned to it, listed in its
``in_()``, a column's default, or a module constant made only of such values. Words that merely look alike
("open" in a message, WhatsApp's own "read" in a Graph payload) are left alone: only the context decides.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple

import pytest

from comanda import enums as e
from tests.helpers.paths import ROOT

PACKAGES = ("comanda", "actions", "connectors", "integrations", "backoffice", "cli", "nlu_components")
SKIPPED = (ROOT / "comanda" / "enums.py", ROOT / "comanda" / "migrations")
TEMPLATES = ("backoffice",)

STATUSES = (
    e.OrderStatus,
    e.OrderPaymentStatus,
    e.PaymentStatus,
    e.ReservationStatus,
    e.LowStockAlertStatus,
    e.CartStatus,
    e.RefundStatus,
    e.SandboxChargeStatus,
    e.SandboxWebhookStatus,
    e.ProviderPaymentStatus,
    e.ReconciliationStatus,
    e.InvoiceStatus,
    e.HandoffStatus,
    e.InboxStatus,
    e.OutboxStatus,
    e.NotificationStatus,
    e.ReturnStatus,
    e.PurchaseOrderStatus,
    e.PrivacyRequestStatus,
    e.ReportExportStatus,
    e.ReviewStatus,
    e.TrainingRunStatus,
)
# The last word of a name ("payment_status", "cancellation_motive", "CHANNEL") → the enums it speaks.
VOCABULARY = {
    "status": STATUSES,
    "fulfilment": (e.Fulfilment,),
    "method": (e.PaymentMethod,),
    "motive": (e.CancellationMotive,),
    "kind": (e.InvoiceKind, e.StockItemKind, e.StoreCreditKind, e.PrivacyRequestKind, e.ConsentKind),
    "provider": (e.PaymentProviderName,),
    "pac": (e.PacName,),
    "role": (e.StaffRole,),
    "channel": (e.Channel,),
    "event": (e.NotificationEvent,),
    "outcome": (e.PaymentEventOutcome, e.ReturnOutcome, e.LoginOutcome),
    "reason": (
        e.MovementReason,
        e.HandoffReason,
        e.FlagReason,
        e.ReviewReason,
        e.StockAdjustmentReason,
        e.SessionEndReason,
    ),
    "condition": (e.ItemCondition, e.ReceivedCondition),
    "funding": (e.CardFunding,),
}
VALUES: Dict[str, FrozenSet[str]] = {
    word: frozenset(v for enum in enums for v in enum.values()) for word, enums in VOCABULARY.items()
}


def vocabulary_of(name: str) -> Optional[FrozenSet[str]]:
    """The values a name's column may hold, by its last word, or None for a name of no vocabulary."""
    return VALUES.get(name.lower().rsplit("_", 1)[-1])


def named(node: ast.AST) -> Optional[FrozenSet[str]]:
    """The vocabulary of an expression that names a column: ``order.status``, ``row["status"]``,
    ``payment_status``, ``Order.status.value``."""
    if isinstance(node, ast.Attribute):
        if node.attr == "value":
            return named(node.value)
        return vocabulary_of(node.attr)
    if isinstance(node, ast.Name):
        return vocabulary_of(node.id)
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return vocabulary_of(node.slice.value)
    return None


def literals(node: Optional[ast.AST], values: FrozenSet[str]) -> Iterator[ast.Constant]:
    """The string constants in ``node`` (itself, in a tuple, list or set, or either branch of an ``if``
    expression) that are among ``values``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in values:
        yield node
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            yield from literals(element, values)
    elif isinstance(node, ast.IfExp):
        yield from literals(node.body, values)
        yield from literals(node.orelse, values)


def constant_strings(node: ast.AST) -> Optional[List[str]]:
    """The strings of a constant made only of strings (one, or a tuple, list, set or frozenset of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "frozenset" and node.args:
        return constant_strings(node.args[0])
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts:
        found = [constant_strings(x) for x in node.elts]
        if all(f is not None and len(f) == 1 for f in found):
            return [f[0] for f in found]  # type: ignore[index]
    return None


def bare_literals(source: str) -> List[Tuple[int, str]]:
    """(line, value) of every bare vocabulary literal in a module's source."""
    tree = ast.parse(source)
    found: List[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for side in sides:
                values = named(side)
                if values:
                    for other in sides:
                        found.extend(literals(other, values))
        elif isinstance(node, ast.keyword) and node.arg:
            values = vocabulary_of(node.arg)
            if values:
                found.extend(literals(node.value, values))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target, value in assigned(targets, node.value):
                values = named(target)
                if values:
                    found.extend(literals(value, values))
                    if isinstance(value, ast.Call):  # a model's column: its default is a member
                        for keyword in value.keywords:
                            if keyword.arg in ("default", "server_default"):
                                found.extend(literals(keyword.value, values))
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("in_", "notin_")
        ):
            values = named(node.func.value)
            if values:
                for arg in node.args:
                    found.extend(literals(arg, values))
    # A module's constant that copies statuses: LIVE = ("draft", "sealed"), or UNCONFIRMED = "unconfirmed" (a
    # constant named after a word that is also a status, OPEN_TAB = "open", is the console's, not a copy).
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and all(isinstance(t, ast.Name) for t in statement.targets):
            strings = constant_strings(statement.value) or []
            names = {t.id for t in statement.targets if t.id.isupper()}  # type: ignore[attr-defined]
            copied = len(strings) > 1 or any(name.lower() in strings for name in names)
            if names and copied and any(set(strings) <= set(enum.values()) for enum in STATUSES):
                found.append(statement.value)  # type: ignore[arg-type]
    return sorted({(n.lineno, getattr(n, "value", None) or ast.unparse(n)) for n in found})


def assigned(targets: List[ast.expr], value: ast.expr) -> Iterator[Tuple[ast.expr, ast.expr]]:
    """(target, value) pairs of an assignment, unpacking ``a.status, a.error = "failed", why``."""
    for target in targets:
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            yield from zip(target.elts, value.elts, strict=True)
        else:
            yield target, value


TEMPLATE_COMPARISON = re.compile(r"([\w.]+)\s*(?:==|!=)\s*['\"]([^'\"]*)['\"]|([\w.]+)\s+(?:not\s+)?in\s+\(([^)]*)\)")


def template_literals(text: str) -> List[Tuple[int, str]]:
    """(line, value) of every vocabulary literal a template compares a column with."""
    found = []
    for block in re.finditer(r"{[{%].*?[%}]}", text, re.S):
        for match in TEMPLATE_COMPARISON.finditer(block.group()):
            name, value, in_name, listed = match.groups()
            name = (name or in_name).removesuffix(".value").rsplit(".", 1)[-1]
            values = vocabulary_of(name) or frozenset()
            for candidate in [value] if value is not None else re.findall(r"['\"]([^'\"]*)['\"]", listed):
                if candidate in values:
                    found.append((text.count("\n", 0, block.start()) + 1, candidate))
    return found


def python_files() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not any(path == skipped or skipped in path.parents for skipped in SKIPPED):
                yield path


def test_no_bare_vocabulary_literals_in_the_packages():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in python_files()
        for line, value in bare_literals(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "spell these through comanda.enums:\n" + "\n".join(found)


def test_no_bare_vocabulary_literals_in_the_templates():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for package in TEMPLATES
        for path in sorted((ROOT / package).rglob("*.html"))
        for line, value in template_literals(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "compare with the enums (template globals) or a flag from Python:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        'if order.status == "paid": pass',
        'if "ready" != row["status"]: pass',
        'ok = payment.method in ("cash", "spei")',
        'select(m.Order).where(m.Order.payment_status.in_(("paid", "refunded")))',
        'update(N).values(status="sent")',
        'order.fulfilment = "pickup"',
        'if invoice.kind == "global": pass',
        'if member.role.value != "owner": pass',
        'CHANNEL = "twilio"\nx = Thing(channel=CHANNEL)\nchannel = "twilio"',
        'status = Column(String(20), nullable=False, default="queued")',
        'LIVE = ("draft", "sealed", "stamped")',
        'UNCONFIRMED = "unconfirmed"',
        'if motive == "01": pass',
        'invoice.status = "stamped" if stamped else "sealed"',
        'row.status, row.last_error = "failed", error',
    ],
)
def test_a_planted_literal_is_caught(source):
    assert bare_literals(source), source


@pytest.mark.parametrize(
    "source",
    [
        'message = "the store is open"',
        "if order.status == OrderStatus.PAID: pass",
        'if request.method == "POST": pass',
        'return response.json({"status": "ok"})',
        'payload = {"messaging_product": "whatsapp", "status": "read"}',
        'if message.kind == "media": pass',  # not a vocabulary of kinds
        'if state in ("sent", "delivered"): pass',  # WhatsApp's own statuses in the simulator
        'TABS = ("waiting", "open", "mine", "resolved")',  # a console tab is not a status
        'OPEN_TAB = "open"',
        'row.status, row.last_error = OutboxStatus.FAILED, "failed"',
        'if order.status in {OrderStatus.READY, "x"}: pass',
    ],
)
def test_look_alike_words_are_left_alone(source):
    assert bare_literals(source) == [], source


def test_templates_are_checked_too():
    planted = "{% if c.ticket.status == 'waiting' %}x{% endif %}\n{% if po.status in ('draft', 'sent') %}{% endif %}"
    assert template_literals(planted) == [(1, "waiting"), (2, "draft"), (2, "sent")]
    assert template_literals("<p>status == 'waiting'</p>{% if tab == 'waiting' %}{% endif %}") == []

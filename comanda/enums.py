"""The vocabulary of statuses, kinds and reasons: one string enum each, the only place their values are spelt.

Each enum is a ``str`` (``OrderStatus.RECEIVED == "received"``), so rows, JSON and Rasa entities carry plain
strings, and the database enforces the same values with a CHECK constraint built by ``check_in``.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Type, TypeVar

from sqlalchemy import CheckConstraint

E = TypeVar("E", bound="StrEnum")


class StrEnum(str, Enum):
    """A string enum whose str() is its value (Python 3.10 has no enum.StrEnum)."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def values(cls) -> tuple:
        return tuple(member.value for member in cls)

    @classmethod
    def parse(cls: Type[E], value: object) -> E | None:
        """The member a value names, or None (outside input is never trusted to be one)."""
        try:
            return cls(value)
        except ValueError:
            return None


def check_in(column: str, enum: Type[StrEnum], name: str | None = None) -> CheckConstraint:
    """A CHECK constraint that keeps ``column`` inside ``enum``'s values (NULL allowed)."""
    listed = ", ".join(f"'{v}'" for v in enum.values())
    return CheckConstraint(f"{column} IN ({listed})", name=name or f"{column}_valid")


def values_in(members: Iterable[StrEnum]) -> tuple:
    """Plain values of some members, for an SQL ``IN``."""
    return tuple(member.value for member in members)


# --- people and channels ------------------------------------------------------------------------


class StaffRole(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    TWILIO = "twilio"
    SIMULATOR = "simulator"
    REST = "rest"
    SHELL = "shell"
    CONSOLE = "console"


class Language(StrEnum):
    ES = "es"
    EN = "en"


# --- stock --------------------------------------------------------------------------------------


class StockItemKind(StrEnum):
    PRODUCT = "product"
    VARIANT = "variant"
    INGREDIENT = "ingredient"


class MovementReason(StrEnum):
    OPENING = "opening"
    RESERVATION = "reservation"
    RELEASE = "release"
    SALE = "sale"
    RETURN = "return"
    PURCHASE_RECEIPT = "purchase_receipt"
    ADJUSTMENT = "adjustment"
    WRITE_OFF = "write_off"  # a returned unit that came back damaged: counted in, then written off


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


class LowStockAlertStatus(StrEnum):
    OPEN = "open"
    ORDERED = "ordered"
    RESOLVED = "resolved"


# --- carts and orders ---------------------------------------------------------------------------


class CartStatus(StrEnum):
    OPEN = "open"
    ORDERED = "ordered"
    ABANDONED = "abandoned"


class Fulfilment(StrEnum):
    PICKUP = "pickup"
    DELIVERY = "delivery"


class CheckoutProblemReason(StrEnum):
    """Why an order cannot be placed as asked (comanda.services.checkout.CheckoutProblem)."""

    NO_DELIVERY = "no_delivery"
    POSTAL_CODE_NOT_SERVED = "postal_code_not_served"
    TOO_FAR = "too_far"
    BELOW_MINIMUM = "below_minimum"
    NO_DELIVERY_PLACE = "no_delivery_place"
    PAYMENT_NOT_OFFERED = "payment_not_offered"
    NAME_MISSING = "name_missing"


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    RECEIVED = "received"
    PREPARING = "preparing"
    READY = "ready"
    DELIVERED = "delivered"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OrderPaymentStatus(StrEnum):
    """Where the order's money stands (the order's ``payment_status``)."""

    UNPAID = "unpaid"
    PAID = "paid"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FLAGGED = "flagged"


# --- money --------------------------------------------------------------------------------------


class PaymentMethod(StrEnum):
    CARD = "card"
    OXXO = "oxxo"
    SPEI = "spei"
    CASH = "cash"
    STORE_CREDIT = "store_credit"  # the customer's saldo a favor covers the order (comanda.services.store_credit)


class PaymentProviderName(StrEnum):
    SANDBOX = "sandbox"
    STRIPE = "stripe"
    MERCADOPAGO = "mercadopago"
    SPEI = "spei"
    CASH = "cash"
    STORE_CREDIT = "store_credit"


class PaymentStatus(StrEnum):
    """A payment's own status (one order may have several payments)."""

    PENDING = "pending"
    PAID = "paid"
    DECLINED = "declined"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    FLAGGED = "flagged"
    VOIDED = "voided"  # cash recorded at a hand-over that staff recalled: no money changed hands


class FlagReason(StrEnum):
    """Why a payment needs a person."""

    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STOCK_GONE = "stock_gone"
    ALREADY_PAID = "already_paid"
    ORDER_CLOSED = "order_closed"
    CREDIT_RETURNED = "credit_returned"  # paid the rest after store credit that went back when the order expired


class CardFunding(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"
    PREPAID = "prepaid"
    UNKNOWN = "unknown"


class PaymentEventKind(StrEnum):
    """What a verified provider webhook says happened."""

    PAID = "paid"
    DECLINED = "declined"
    EXPIRED = "expired"
    PENDING = "pending"
    REFUND = "refund"  # refunds of the payment moved (succeeded, failed)


class PaymentEventOutcome(StrEnum):
    """What applying a provider webhook did; a flagged payment's outcome is why it was flagged (FlagReason)."""

    PAID = "paid"
    DUPLICATE = "duplicate"
    DECLINED = "declined"
    EXPIRED = "expired"
    PENDING = "pending"
    IGNORED = "ignored"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    AMOUNT_MISMATCH = FlagReason.AMOUNT_MISMATCH.value
    CURRENCY_MISMATCH = FlagReason.CURRENCY_MISMATCH.value
    STOCK_GONE = FlagReason.STOCK_GONE.value
    ALREADY_PAID = FlagReason.ALREADY_PAID.value
    ORDER_CLOSED = FlagReason.ORDER_CLOSED.value
    CREDIT_RETURNED = FlagReason.CREDIT_RETURNED.value


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ProviderPaymentStatus(StrEnum):
    """A payment as a provider's own books have it (reconciliation)."""

    PAID = "paid"
    PENDING = "pending"
    DECLINED = "declined"
    REFUNDED = "refunded"


class ReconciliationStatus(StrEnum):
    """How one payment compares with the provider's books, problems first."""

    MISSING = "missing"  # the provider took money Comanda did not record
    MISSING_AT_PROVIDER = "missing_at_provider"
    DUPLICATED = "duplicated"
    AMOUNT_MISMATCH = "amount_mismatch"
    UNPAID_LINK = "unpaid_link"
    OK = "ok"


class SandboxChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


class CheckoutPageState(StrEnum):
    """What the sandbox's checkout page says about its payment."""

    OPEN = "open"
    PROCESSING = "processing"  # pressed: the charge's webhook is on its way (pressing again charges nothing)
    PAID = "paid"
    DECLINED = "declined"
    EXPIRED = "expired"
    FLAGGED = "flagged"
    CANCELLED = "cancelled"  # the order was cancelled before it was paid


class SandboxWebhookStatus(StrEnum):
    """A webhook in the sandbox's outbox: retried until the back office accepts it, as a provider retries."""

    PENDING = "pending"
    DELIVERED = "delivered"
    GIVEN_UP = "given_up"


# --- invoices (CFDI) ----------------------------------------------------------------------------


class InvoiceKind(StrEnum):
    INGRESO = "ingreso"
    EGRESO = "egreso"
    GLOBAL = "global"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    SEALED = "sealed"  # local PAC: sealed, not stamped (a test document)
    STAMPED = "stamped"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # the PAC may have stamped it; the key is kept until staff release it
    CANCELLATION_PENDING = "cancellation_pending"
    CANCELLED = "cancelled"


class PacName(StrEnum):
    LOCAL = "local"
    FACTURAPI = "facturapi"
    FINKOK = "finkok"


class RelationType(StrEnum):
    """SAT's TipoRelacion as Comanda uses it."""

    CREDIT_NOTE = "01"
    SUBSTITUTION = "04"


class CancellationMotive(StrEnum):
    """SAT's cancellation motives."""

    WITH_ERRORS_WITH_RELATION = "01"
    WITH_ERRORS_WITHOUT_RELATION = "02"
    NOT_CARRIED_OUT = "03"
    NOMINATIVE_IN_GLOBAL = "04"


# --- returns, handoff, purchasing ---------------------------------------------------------------


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    REFUNDED = "refunded"
    CREDITED = "credited"  # the money went to the customer's store credit
    EXCHANGED = "exchanged"  # the replacement was handed over as a new sale


class HandoffReason(StrEnum):
    REQUESTED = "requested"
    FALLBACK = "fallback"
    COMPLAINT = "complaint"
    MEDIA = "media"
    PAYMENT_FLAG = "payment_flag"
    REFUND_FAILED = "refund_failed"  # a provider could not give the money back: a person must
    CANCELLATION = "cancellation"
    RETURN = "return"
    PRIVACY = "privacy"
    INVOICE = "invoice"


class HandoffStatus(StrEnum):
    """A ticket waits for a person, is open while one owns the chat (the bot is silent), then is resolved."""

    WAITING = "waiting"
    OPEN = "open"
    RESOLVED = "resolved"


class PurchaseOrderStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CANCELLED = "cancelled"


# --- messages -----------------------------------------------------------------------------------


class InboxStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    PARKED = "parked"  # could not be stored as it came, or its turn kept failing: for staff, with its error


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    GIVEN_UP = "given_up"


class NotificationEvent(StrEnum):
    PAID = "paid"
    PAID_TWICE = "paid_twice"  # a second real charge for a paid order: a person refunds the extra one
    DECLINED = "declined"
    EXPIRED = "expired"
    FLAGGED = "flagged"
    PREPARING = "preparing"
    READY = "ready"
    DELIVERED = "delivered"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    RETURN_APPROVED = "return_approved"
    RETURN_REJECTED = "return_rejected"
    RETURN_RECEIVED = "return_received"
    RETURN_REFUNDED = "return_refunded"
    RETURN_CREDITED = "return_credited"
    RETURN_EXCHANGED = "return_exchanged"
    RETURN_CREDIT_NOTE = "return_credit_note"
    RETURN_EXCHANGE_DUE = "return_exchange_due"  # the exchange's new sale costs more: its link for the difference


class NotificationStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    GIVEN_UP = "given_up"


# --- privacy ------------------------------------------------------------------------------------


class PrivacyRequestKind(StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    OPT_OUT = "opt_out"


class PrivacyRequestStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    REJECTED = "rejected"


# --- staff console ------------------------------------------------------------------------------


class LoginOutcome(StrEnum):
    """How a console login attempt ended; wrong passwords and unknown accounts count towards throttling."""

    SUCCEEDED = "succeeded"
    WRONG_PASSWORD = "wrong_password"
    UNKNOWN_ACCOUNT = "unknown_account"
    DISABLED = "disabled"
    THROTTLED = "throttled"


class SessionEndReason(StrEnum):
    LOGOUT = "logout"
    IDLE = "idle"
    EXPIRED = "expired"
    DISABLED = "disabled"
    PASSWORD_CHANGED = "password_changed"


# --- returns ------------------------------------------------------------------------------------


class ReturnOutcome(StrEnum):
    """What the customer gets for what comes back."""

    REFUND = "refund"  # the money, to the original method
    CREDIT = "credit"  # store credit (saldo a favor) for a later order
    EXCHANGE = "exchange"  # another variant or product: a difference in price is charged or refunded


class ReturnReason(StrEnum):
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"
    CHANGED_MIND = "changed_mind"
    NOT_AS_DESCRIBED = "not_as_described"
    OTHER = "other"


class ItemCondition(StrEnum):
    """The state a product's policy asks returned units to be in (``products.return_condition``), and the
    one the customer declares: unopened satisfies unused, unused satisfies any."""

    ANY = "any"
    UNUSED = "unused"
    UNOPENED = "unopened"


class ReceivedCondition(StrEnum):
    """What staff find when the goods arrive: good goes back on the shelf, damaged is written off."""

    GOOD = "good"
    DAMAGED = "damaged"


class RefundMoment(StrEnum):
    """When a return's money is given back (``businesses.return_refund_on``)."""

    RECEIVED = "received"
    APPROVED = "approved"


class StoreCreditKind(StrEnum):
    RETURN = "return"  # credit from a return (+)
    CHECKOUT = "checkout"  # spent on an order (−)
    RESTORED = "restored"  # what an unpaid order had spent, back when it was cancelled or expired (+)
    ADJUSTMENT = "adjustment"  # staff's correction, either way


class ReturnProblem(StrEnum):
    """Why a return cannot go as asked (comanda.services.returns.ReturnRefused.problem)."""

    NOT_YOURS = "not_yours"  # not the customer's order at this store (never said as such: "no such order")
    NOT_HANDED_OVER = "not_handed_over"  # not paid and picked up or delivered yet
    NOT_RETURNABLE = "not_returnable"  # food and drinks: a complaint goes to a person instead
    WINDOW_PASSED = "window_passed"
    EXCEEDS_SALE = "exceeds_sale"  # more units than sold, counting earlier returns
    NOTHING = "nothing"  # no lines, or zero units
    OUTCOME_NOT_ALLOWED = "outcome_not_allowed"
    REPLACEMENT_UNKNOWN = "replacement_unknown"
    REPLACEMENT_OUT_OF_STOCK = "replacement_out_of_stock"
    NO_PAYMENT = "no_payment"  # nothing to refund through
    STATUS = "status"  # the return is not where this step needs it (someone moved it first)


# --- purchasing, stock counts and customers (CRM) -----------------------------------------------


class StockAdjustmentReason(StrEnum):
    """Why a counted quantity differs from the books (the reports' waste by reason)."""

    WASTE = "waste"
    BREAKAGE = "breakage"
    COUNT_CORRECTION = "count_correction"


class ConsentKind(StrEnum):
    MARKETING = "marketing"  # promotions and broadcasts; service messages about orders need none
    FISCAL_DATA = "fiscal_data"  # keeping invoicing data for next time


class ConsentSource(StrEnum):
    CHAT = "chat"
    CONSOLE = "console"
    CLI = "cli"
    IMPORT = "import"


# --- reports ------------------------------------------------------------------------------------


class ReportExportStatus(StrEnum):
    """A daily export: claimed and being written, written (and e-mailed), or failed (tried again later)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# --- review inbox (owners teach the bot) ---------------------------------------------------------


class ReviewReason(StrEnum):
    """Why a customer's message was kept for an owner to review."""

    LOW_CONFIDENCE = "low_confidence"  # the intent's confidence under COMANDA_REVIEW_CONFIDENCE
    FALLBACK = "fallback"  # Rasa's FallbackClassifier gave up (nlu_fallback)
    AMBIGUOUS = "ambiguous"  # the top two intents within COMANDA_REVIEW_MARGIN of each other
    CORRECTED = "corrected"  # the customer's next message said the bot got it wrong ("no, eso no")
    HANDOFF = "handoff"  # the customer asked for a person right after
    UNPLACED = "unplaced"  # order text with words the catalog reading could not place
    CONFLICT = "conflict"  # the classifier and the catalog reading disagreed (intent_conflict)


class ReviewStatus(StrEnum):
    WAITING = "waiting"
    CORRECT = "correct"  # it was right: kept as a training example of the predicted intent
    CHANGED = "changed"  # another intent (or FAQ topic): a training example of that one
    FIXED = "fixed"  # the order's lines were fixed (and, with a synonym, the catalog learnt a word)
    IGNORED = "ignored"


class TrainingRunStatus(StrEnum):
    RUNNING = "running"
    ACTIVATED = "activated"  # evaluated not worse (or forced) and loaded on every Rasa server
    KEPT_OLD = "kept_old"  # the new model was worse: the active one stays
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # a rollback to the model before


class StaffTask(StrEnum):
    """What a person must still do after a return's step (comanda.services.returns.Settled.needs_staff)."""

    MANUAL_REFUND = "manual_refund"  # a cash or SPEI sale: give the money back by hand, record the reference
    REFUND_FAILED = "refund_failed"  # the provider refused the refund (a handoff ticket says why)
    CREDIT_NOTE_FAILED = "credit_note_failed"  # the PAC refused the credit note (a handoff ticket says why)

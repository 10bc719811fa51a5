"""The shared SQL store: every table Comanda needs, from catalog to invoices.

Conventions: money columns are ``Money`` (Decimal, 2 places, MXN); stock is ``Quantity``; times are
aware UTC. Statuses, kinds and reasons are short strings whose values are the string enums of
comanda.enums, enforced by CHECK constraints (``check_in``). Anything that changes money, stock or an
invoice leaves a row behind (stock_movements, payment_events, refunds, order_status_changes, audit_events).
Rasa's tracker store shares this database in its own table, ``events``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import declarative_base, relationship

from comanda.clock import now
from comanda.enums import (
    CancellationMotive,
    CardFunding,
    CartStatus,
    Channel,
    ConsentKind,
    ConsentSource,
    FlagReason,
    Fulfilment,
    HandoffReason,
    HandoffStatus,
    InboxStatus,
    InvoiceKind,
    InvoiceStatus,
    ItemCondition,
    Language,
    LoginOutcome,
    LowStockAlertStatus,
    MovementReason,
    NotificationEvent,
    NotificationStatus,
    OrderPaymentStatus,
    OrderStatus,
    OutboxStatus,
    PacName,
    PaymentEventOutcome,
    PaymentMethod,
    PaymentProviderName,
    PaymentStatus,
    PrivacyRequestKind,
    PrivacyRequestStatus,
    PurchaseOrderStatus,
    ReceivedCondition,
    RefundMoment,
    RefundStatus,
    RelationType,
    ReportExportStatus,
    ReservationStatus,
    ReturnOutcome,
    ReturnReason,
    ReturnStatus,
    ReviewReason,
    ReviewStatus,
    SandboxChargeStatus,
    SandboxWebhookStatus,
    SessionEndReason,
    StaffRole,
    StockAdjustmentReason,
    StockItemKind,
    StoreCreditKind,
    TrainingRunStatus,
    check_in,
)
from comanda.types import Coordinate, Money, Quantity, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLAlchemy 1.4 ships no types (2.0's Mapped[] would give columns theirs): to mypy the models are Any.
Base: Any = declarative_base(metadata=MetaData(naming_convention=NAMING_CONVENTION))

# Big integer ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY for its rowid autoincrement.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column:
    return Column(Id, primary_key=True, autoincrement=True)


def _created() -> Column:
    return Column(UTCDateTime, nullable=False, default=now)


# --- business and stores -------------------------------------------------------------------------


class Business(Base):
    __tablename__ = "businesses"
    id = Column(String(40), primary_key=True)
    name = Column(String(200), nullable=False)
    timezone = Column(String(64), nullable=False)
    currency = Column(String(3), nullable=False, default="MXN")
    default_language = Column(String(2), nullable=False, default=Language.ES.value)
    privacy_notice_url = Column(String(500))
    issuer_rfc = Column(String(13))
    issuer_legal_name = Column(String(300))
    issuer_tax_regime = Column(String(3))
    issuer_csd = Column(String(200))  # basename of the .cer/.key pair
    reservation_hold_minutes = Column(Integer, nullable=False, default=15)
    payment_link_expiry_minutes = Column(Integer, nullable=False, default=15)
    return_window_days = Column(Integer, nullable=False, default=30)
    invoice_deadline = Column(String(20), nullable=False, default="same_month")
    auto_approve_refund_up_to = Column(Money, nullable=False, default=0)
    # when a return's money goes back: once the goods are received (default) or as soon as it is approved
    return_refund_on = Column(
        String(10), nullable=False, default=RefundMoment.RECEIVED.value, server_default=RefundMoment.RECEIVED.value
    )
    handoff_after_consecutive_fallbacks = Column(Integer, nullable=False, default=2)
    # A handoff ticket nobody took within this many minutes: the customer is told and may carry on with the bot.
    handoff_unanswered_minutes = Column(Integer, nullable=False, default=10, server_default=text("10"))
    # What customers may pay with, as PaymentMethod codes in the order offered (catalog: business.payment_methods)
    payment_methods = Column(JSON, nullable=False, default=lambda: [PaymentMethod.CASH.value])
    faq = Column(JSON, nullable=False, default=dict)
    created_at = _created()

    stores = relationship("Store", back_populates="business", order_by="Store.id")
    __table_args__ = (check_in("default_language", Language), check_in("return_refund_on", RefundMoment))


class Store(Base):
    __tablename__ = "stores"
    id = Column(String(40), primary_key=True)
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    name = Column(String(200), nullable=False)
    whatsapp_phone_number_id = Column(String(40), unique=True)
    whatsapp_display_number = Column(String(40))
    address = Column(String(500), nullable=False)
    postal_code = Column(String(5), nullable=False)
    hours = Column(JSON, nullable=False, default=dict)  # {"mon-fri": "07:30-21:00", ...}
    delivery_available = Column(Boolean, nullable=False, default=False)
    delivery_fee = Column(Money)
    delivery_min_order = Column(Money)
    # Where the store is, and how far it delivers to a location shared in the chat (postal codes aside).
    latitude = Column(Coordinate)
    longitude = Column(Coordinate)
    delivery_radius_km = Column(Quantity)
    ticket_prefix = Column(String(4), nullable=False, default="A")  # "C" → tickets C-001, C-002, ...
    # The queue display colours an order's age: yellow from warn, red from late (minutes in the queue).
    queue_warn_minutes = Column(Integer, nullable=False, default=10, server_default="10")
    queue_late_minutes = Column(Integer, nullable=False, default=20, server_default="20")
    # The inbox highlights a handoff ticket nobody took within this many minutes.
    handoff_warn_minutes = Column(Integer, nullable=False, default=5, server_default="5")
    # WhatsApp templates approved for the store's number: [{"name", "language", "body" with {{1}}…}] (catalog)
    handoff_templates = Column(JSON, nullable=False, default=list)
    # Staff's canned replies: [{"key", "es", "en"}] with {name}, {ticket}, {store} (catalog)
    canned_replies = Column(JSON, nullable=False, default=list)
    active = Column(Boolean, nullable=False, default=True)
    created_at = _created()

    business = relationship("Business", back_populates="stores")
    delivery_postal_codes = relationship(
        "StoreDeliveryPostalCode", cascade="all, delete-orphan", order_by="StoreDeliveryPostalCode.postal_code"
    )


class StoreDeliveryPostalCode(Base):
    __tablename__ = "store_delivery_postal_codes"
    store_id = Column(ForeignKey("stores.id"), primary_key=True)
    postal_code = Column(String(5), primary_key=True)


class StaffUser(Base):
    """A person who works in the console. Owners see every store of the business; managers and staff
    see the stores listed in staff_store_access (comanda.services.staff scopes every query by them)."""

    __tablename__ = "staff_users"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    email = Column(String(320), nullable=False, unique=True)  # lower-case
    name = Column(String(200), nullable=False)
    role = Column(String(20), nullable=False, default=StaffRole.STAFF.value)
    password_hash = Column(String(300))  # argon2id
    active = Column(Boolean, nullable=False, default=True)
    language = Column(
        String(2), nullable=False, default=Language.ES.value, server_default=Language.ES.value
    )  # the console speaks it
    sound_on = Column(Boolean, nullable=False, default=True, server_default=true())  # new orders and chats chime
    whatsapp_phone = Column(String(20), unique=True)  # E.164: an owner or manager reviews from WhatsApp with it
    created_at = _created()
    disabled_at = Column(UTCDateTime)
    last_login_at = Column(UTCDateTime)

    stores = relationship("Store", secondary="staff_store_access", order_by="Store.id")
    __table_args__ = (check_in("role", StaffRole), check_in("language", Language))


class StaffStoreAccess(Base):
    """Which stores a manager or staff member works at (many to many)."""

    __tablename__ = "staff_store_access"
    staff_id = Column(ForeignKey("staff_users.id"), primary_key=True)
    store_id = Column(ForeignKey("stores.id"), primary_key=True, index=True)


class StaffSession(Base):
    """A console login, kept in the database so every back-office replica knows it. The cookie holds a
    random token; only its SHA-256 is stored, so a copy of the database opens no session."""

    __tablename__ = "staff_sessions"
    id = Column(String(64), primary_key=True)  # SHA-256 (hex) of the cookie's token
    staff_id = Column(ForeignKey("staff_users.id"), nullable=False, index=True)
    ip = Column(String(45))
    user_agent = Column(String(300))
    created_at = _created()
    last_seen_at = Column(UTCDateTime, nullable=False, default=now)  # idle expiry counts from here
    expires_at = Column(UTCDateTime, nullable=False)  # absolute expiry
    ended_at = Column(UTCDateTime)  # logout, account disabled, or expired
    end_reason = Column(String(20))
    __table_args__ = (check_in("end_reason", SessionEndReason),)


class StaffApiToken(Base):
    """A personal bearer token for the staff API (integrations, scripts): it acts as its owner, with the
    owner's stores. Shown once; only its SHA-256 is stored."""

    __tablename__ = "staff_api_tokens"
    id = _id()
    staff_id = Column(ForeignKey("staff_users.id"), nullable=False, index=True)
    label = Column(String(100))
    token_hash = Column(String(64), nullable=False, unique=True)
    prefix = Column(String(12), nullable=False)  # the token's first characters, to tell tokens apart in lists
    created_at = _created()
    last_used_at = Column(UTCDateTime)
    revoked_at = Column(UTCDateTime)


class LoginAttempt(Base):
    """Every console login attempt: wrong passwords are counted per account and per address to throttle
    guessing (in the database, so the limit holds across replicas)."""

    __tablename__ = "login_attempts"
    id = _id()
    email = Column(String(320), nullable=False)
    ip = Column(String(45), nullable=False)
    outcome = Column(String(20), nullable=False)
    created_at = _created()
    __table_args__ = (
        check_in("outcome", LoginOutcome),
        Index("ix_login_attempts_email_created", "email", "created_at"),
        Index("ix_login_attempts_ip_created", "ip", "created_at"),
    )


# --- customers and conversations -----------------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"
    id = _id()
    phone = Column(String(20), unique=True)  # E.164; None for WhatsApp users known only by their BSUID
    whatsapp_user_id = Column(String(160), unique=True)  # business-scoped user id (BSUID)
    name = Column(String(200))
    language = Column(String(2))
    consent_marketing = Column(Boolean, nullable=False, default=False)
    consent_marketing_at = Column(UTCDateTime)
    consent_marketing_source = Column(String(20))  # the history is in consent_events
    consent_fiscal_data = Column(Boolean, nullable=False, default=False)
    consent_fiscal_data_at = Column(UTCDateTime)
    erased_at = Column(UTCDateTime)  # personal data removed on a privacy request
    created_at = _created()
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)

    fiscal_profiles = relationship("FiscalProfile", back_populates="customer")
    __table_args__ = (check_in("language", Language), check_in("consent_marketing_source", ConsentSource))


class FiscalProfile(Base):
    """Saved invoicing data, kept only with the customer's consent."""

    __tablename__ = "fiscal_profiles"
    id = _id()
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    rfc = Column(String(13), nullable=False)
    legal_name = Column(String(300), nullable=False)
    postal_code = Column(String(5), nullable=False)
    tax_regime = Column(String(3), nullable=False)
    cfdi_use = Column(String(4), nullable=False)
    email = Column(String(320))
    created_at = _created()
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)

    customer = relationship("Customer", back_populates="fiscal_profiles")
    __table_args__ = (UniqueConstraint("customer_id", "rfc"),)


class Conversation(Base):
    """One customer talking to one store on one channel; its id is Rasa's sender id."""

    __tablename__ = "conversations"
    id = Column(String(120), primary_key=True)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    channel = Column(String(20), nullable=False)
    recipient = Column(String(160))  # where the channel delivers: wa_id, BSUID or whatsapp:+E164
    language = Column(String(2))
    last_inbound_at = Column(UTCDateTime)  # opens WhatsApp's 24-hour service window
    # Payloads of the last choices sent as numbered text (more than 10 options): "3" means the third.
    numbered_options = Column(JSON)
    created_at = _created()
    __table_args__ = (
        UniqueConstraint("store_id", "customer_id", "channel"),
        check_in("channel", Channel),
        check_in("language", Language),
    )


# --- catalog -------------------------------------------------------------------------------------


class Category(Base):
    __tablename__ = "categories"
    id = Column(String(40), primary_key=True)
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    name_es = Column(String(100), nullable=False)
    name_en = Column(String(100), nullable=False)
    position = Column(Integer, nullable=False, default=0)


class Supplier(Base):
    __tablename__ = "suppliers"
    id = Column(String(40), primary_key=True)
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    name = Column(String(200), nullable=False)
    email = Column(String(320))
    delivery_days = Column(JSON, nullable=False, default=list)  # ["tue", "fri"]
    lead_time_days = Column(Integer, nullable=False, default=1)
    language = Column(
        String(2), nullable=False, default=Language.ES.value, server_default=Language.ES.value
    )  # its POs' language
    __table_args__ = (check_in("language", Language),)


class StockItem(Base):
    """Anything counted on a shelf: a finished product, one retail variant, or an ingredient.

    Products without a recipe point at their stock item; prepared products consume stock items
    through recipe lines. Purchasing, alerts and the ledger all speak of stock items.
    """

    __tablename__ = "stock_items"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    code = Column(String(80), nullable=False)  # SKU, variant SKU, or ingredient id
    kind = Column(String(20), nullable=False)
    name = Column(String(200), nullable=False)
    unit = Column(String(10), nullable=False, default="pz")  # pz | g | ml | ...
    supplier_id = Column(ForeignKey("suppliers.id"))
    reorder_point = Column(Quantity)
    reorder_qty = Column(Quantity)
    __table_args__ = (UniqueConstraint("business_id", "code"), check_in("kind", StockItemKind))


class Product(Base):
    __tablename__ = "products"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    sku = Column(String(60), nullable=False)
    name_es = Column(String(200), nullable=False)
    name_en = Column(String(200), nullable=False)
    category_id = Column(ForeignKey("categories.id"), nullable=False)
    price = Column(Money, nullable=False)
    sat_prod_serv = Column(String(8), nullable=False)
    sat_unit = Column(String(3), nullable=False)
    returnable = Column(Boolean, nullable=False, default=False)
    return_window_days = Column(Integer)  # None: the business's window
    return_condition = Column(
        String(10), nullable=False, default=ItemCondition.ANY.value, server_default=ItemCondition.ANY.value
    )
    stock_item_id = Column(ForeignKey("stock_items.id"))  # finished goods; None for recipes/variants
    # Retail variant options with their labels: {"size": [{"id": "G", "es": "G", "en": "L", "synonyms": [...]}]}
    variant_axes = Column(JSON, nullable=False, default=dict)
    active = Column(Boolean, nullable=False, default=True)
    created_at = _created()
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)

    category = relationship("Category")
    stock_item = relationship("StockItem")
    synonyms = relationship("ProductSynonym", cascade="all, delete-orphan", order_by="ProductSynonym.id")
    variants = relationship("ProductVariant", back_populates="product", order_by="ProductVariant.id")
    recipe = relationship("RecipeLine", cascade="all, delete-orphan", order_by="RecipeLine.id")
    modifier_groups = relationship(
        "ProductModifierGroup", cascade="all, delete-orphan", order_by="ProductModifierGroup.position"
    )
    __table_args__ = (UniqueConstraint("business_id", "sku"), check_in("return_condition", ItemCondition))

    def name(self, language: str) -> str:
        return self.name_en if language == "en" else self.name_es


class ProductSynonym(Base):
    """Other ways customers name a product ("coca", "coquita"): the NLU reads these live."""

    __tablename__ = "product_synonyms"
    id = _id()
    product_id = Column(ForeignKey("products.id"), nullable=False, index=True)
    text = Column(String(200), nullable=False)
    __table_args__ = (UniqueConstraint("product_id", "text"),)


class ProductVariant(Base):
    """A retail combination (size × colour) with its own SKU and stock."""

    __tablename__ = "product_variants"
    id = _id()
    product_id = Column(ForeignKey("products.id"), nullable=False, index=True)
    sku = Column(String(80), nullable=False, unique=True)
    attributes = Column(JSON, nullable=False)  # {"size": "M", "color": "negro"}
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    active = Column(Boolean, nullable=False, default=True)

    product = relationship("Product", back_populates="variants")
    stock_item = relationship("StockItem")


class ModifierGroup(Base):
    __tablename__ = "modifier_groups"
    id = Column(String(40), primary_key=True)
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    max_choices = Column(Integer, nullable=False, default=1)  # taco extras: several on one line
    options = relationship("ModifierOption", order_by="ModifierOption.position")


class ModifierOption(Base):
    __tablename__ = "modifier_options"
    id = _id()
    group_id = Column(ForeignKey("modifier_groups.id"), nullable=False)
    code = Column(String(40), nullable=False)  # "large", "oat", "50"
    name_es = Column(String(100), nullable=False)
    name_en = Column(String(100), nullable=False)
    price_delta = Column(Money, nullable=False, default=0)
    is_default = Column(Boolean, nullable=False, default=False)
    synonyms = Column(JSON, nullable=False, default=list)
    position = Column(Integer, nullable=False, default=0)
    ingredients = relationship("ModifierOptionIngredient", order_by="ModifierOptionIngredient.id")
    __table_args__ = (UniqueConstraint("group_id", "code"),)


class ModifierOptionIngredient(Base):
    """What choosing an option does to a recipe: it removes an ingredient ("sin perlas": no tapioca) or
    replaces it with another in the same quantity (oat milk instead of milk); reservations follow."""

    __tablename__ = "modifier_option_ingredients"
    id = _id()
    option_id = Column(ForeignKey("modifier_options.id"), nullable=False, index=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)  # the recipe's ingredient
    replacement_id = Column(ForeignKey("stock_items.id"))  # None: left out
    __table_args__ = (UniqueConstraint("option_id", "stock_item_id"),)


class ProductModifierGroup(Base):
    __tablename__ = "product_modifier_groups"
    product_id = Column(ForeignKey("products.id"), primary_key=True)
    group_id = Column(ForeignKey("modifier_groups.id"), primary_key=True)
    position = Column(Integer, nullable=False, default=0)
    group = relationship("ModifierGroup")


class RecipeLine(Base):
    """How much of an ingredient one unit of a prepared product consumes."""

    __tablename__ = "recipe_lines"
    id = _id()
    product_id = Column(ForeignKey("products.id"), nullable=False, index=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    quantity = Column(Quantity, nullable=False)
    stock_item = relationship("StockItem")
    __table_args__ = (UniqueConstraint("product_id", "stock_item_id"),)


# --- stock ---------------------------------------------------------------------------------------


class StockLevel(Base):
    """Current stock of one item at one store. Changed only together with a StockMovement row."""

    __tablename__ = "stock_levels"
    store_id = Column(ForeignKey("stores.id"), primary_key=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), primary_key=True)
    on_hand = Column(Quantity, nullable=False, default=0)
    reserved = Column(Quantity, nullable=False, default=0)
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)
    __table_args__ = (
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    )
    stock_item = relationship("StockItem")


class StockMovement(Base):
    """The stock ledger: on_hand = sum(on_hand_delta), reserved = sum(reserved_delta), per store and item."""

    __tablename__ = "stock_movements"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    reason = Column(String(20), nullable=False)
    on_hand_delta = Column(Quantity, nullable=False, default=0)
    reserved_delta = Column(Quantity, nullable=False, default=0)
    reference_type = Column(String(30))  # reservation | order | return | purchase_order | seed | staff
    reference_id = Column(String(60))
    actor = Column(String(100))  # customer:<id>, staff:<id>, system
    note = Column(String(500))
    created_at = _created()
    __table_args__ = (
        Index("ix_stock_movements_store_item", "store_id", "stock_item_id"),
        check_in("reason", MovementReason),
    )


class Reservation(Base):
    """Stock held for an order while the customer pays; expires after the business's hold time."""

    __tablename__ = "reservations"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    order_id = Column(ForeignKey("orders.id"), index=True)
    status = Column(String(20), nullable=False, default=ReservationStatus.ACTIVE.value)
    expires_at = Column(UTCDateTime, nullable=False)
    created_at = _created()
    closed_at = Column(UTCDateTime)
    lines = relationship("ReservationLine", cascade="all, delete-orphan")
    __table_args__ = (
        Index("ix_reservations_status_expires", "status", "expires_at"),
        check_in("status", ReservationStatus),
    )


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    id = _id()
    reservation_id = Column(ForeignKey("reservations.id"), nullable=False, index=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    quantity = Column(Quantity, nullable=False)


class LowStockAlert(Base):
    __tablename__ = "low_stock_alerts"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    on_hand = Column(Quantity, nullable=False)
    status = Column(String(20), nullable=False, default=LowStockAlertStatus.OPEN.value)
    purchase_order_id = Column(ForeignKey("purchase_orders.id"), index=True)
    created_at = _created()
    resolved_at = Column(UTCDateTime)
    # One open alert per store and item: an alert that is ordered or resolved frees the place by its status.
    __table_args__ = (
        check_in("status", LowStockAlertStatus),
        Index(
            "uq_low_stock_alerts_open",
            "store_id",
            "stock_item_id",
            unique=True,
            sqlite_where=text(f"status = '{LowStockAlertStatus.OPEN.value}'"),
            postgresql_where=text(f"status = '{LowStockAlertStatus.OPEN.value}'"),
        ),
    )


# --- carts and orders ----------------------------------------------------------------------------


class Cart(Base):
    __tablename__ = "carts"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    conversation_id = Column(ForeignKey("conversations.id"), index=True)
    status = Column(String(20), nullable=False, default=CartStatus.OPEN.value)
    fulfilment = Column(String(10))
    delivery_postal_code = Column(String(5))
    delivery_address = Column(String(500))
    delivery_latitude = Column(Coordinate)
    delivery_longitude = Column(Coordinate)
    created_at = _created()
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)
    lines = relationship("CartLine", cascade="all, delete-orphan", order_by="CartLine.id")
    __table_args__ = (
        Index("ix_carts_store_customer_status", "store_id", "customer_id", "status"),
        check_in("status", CartStatus),
        check_in("fulfilment", Fulfilment),
    )


class CartLine(Base):
    __tablename__ = "cart_lines"
    id = _id()
    cart_id = Column(ForeignKey("carts.id"), nullable=False, index=True)
    product_id = Column(ForeignKey("products.id"), nullable=False)
    variant_id = Column(ForeignKey("product_variants.id"))
    quantity = Column(Integer, nullable=False)
    # {"size": "large", "sugar": "50"}; a group that takes several options has a list: {"taco_extras": [...]}
    modifiers = Column(JSON, nullable=False, default=dict)
    note = Column(String(200))  # what the kitchen should know that no option says: "bien fría"
    created_at = _created()
    product = relationship("Product")
    variant = relationship("ProductVariant")
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class TicketCounter(Base):
    """Gap-free daily ticket numbers per store (C-001, C-002, ...): one row locked per assignment."""

    __tablename__ = "ticket_counters"
    store_id = Column(ForeignKey("stores.id"), primary_key=True)
    day = Column(Date, primary_key=True)
    last_number = Column(Integer, nullable=False, default=0)


class Order(Base):
    __tablename__ = "orders"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    conversation_id = Column(ForeignKey("conversations.id"), index=True)
    cart_id = Column(ForeignKey("carts.id"))
    channel = Column(String(20), nullable=False)
    status = Column(String(20), nullable=False, default=OrderStatus.PENDING_PAYMENT.value)
    payment_status = Column(String(20), nullable=False, default=OrderPaymentStatus.UNPAID.value)
    payment_method = Column(String(20))
    fulfilment = Column(String(10), nullable=False, default=Fulfilment.PICKUP.value)
    delivery_address = Column(String(500))
    delivery_postal_code = Column(String(5))
    delivery_latitude = Column(Coordinate)
    delivery_longitude = Column(Coordinate)
    customer_name = Column(String(200))
    note = Column(String(500))  # for the kitchen or the driver, shown on the queue display's card
    subtotal = Column(Money, nullable=False)
    delivery_fee = Column(Money, nullable=False, default=0)
    total = Column(Money, nullable=False)
    currency = Column(String(3), nullable=False, default="MXN")
    language = Column(String(2), nullable=False, default=Language.ES.value)
    ticket_day = Column(Date)
    ticket_number = Column(Integer)
    ticket_code = Column(String(20))  # "C-042"
    created_at = _created()
    confirmed_at = Column(UTCDateTime)
    paid_at = Column(UTCDateTime)
    completed_at = Column(UTCDateTime)
    cancelled_at = Column(UTCDateTime)
    lines = relationship("OrderLine", cascade="all, delete-orphan", order_by="OrderLine.id")
    __table_args__ = (
        UniqueConstraint("store_id", "ticket_day", "ticket_number"),
        Index("ix_orders_store_status", "store_id", "status"),
        check_in("channel", Channel),
        check_in("status", OrderStatus),
        check_in("payment_status", OrderPaymentStatus),
        check_in("payment_method", PaymentMethod),
        check_in("fulfilment", Fulfilment),
        check_in("language", Language),
    )


class OrderLine(Base):
    """A sold line, with name, price and SAT keys copied at sale time (the catalog may change)."""

    __tablename__ = "order_lines"
    id = _id()
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    product_id = Column(ForeignKey("products.id"), nullable=False)
    variant_id = Column(ForeignKey("product_variants.id"))
    sku = Column(String(80), nullable=False)
    description = Column(String(300), nullable=False)
    quantity = Column(Integer, nullable=False)
    modifiers = Column(JSON, nullable=False, default=dict)
    unit_price = Column(Money, nullable=False)  # IVA included, modifiers included
    line_total = Column(Money, nullable=False)
    note = Column(String(300))  # the cart line's note for the kitchen ("bien picosos"), shown on its ticket
    sat_prod_serv = Column(String(8), nullable=False)
    sat_unit = Column(String(3), nullable=False)
    returned_quantity = Column(Integer, nullable=False, default=0)
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class OrderStatusChange(Base):
    __tablename__ = "order_status_changes"
    id = _id()
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    from_status = Column(String(20))
    to_status = Column(String(20), nullable=False)
    actor = Column(String(100), nullable=False)
    created_at = _created()
    __table_args__ = (check_in("from_status", OrderStatus), check_in("to_status", OrderStatus))


# --- payments ------------------------------------------------------------------------------------


class Payment(Base):
    """One attempt to collect an order's total: a link, a SPEI reference or cash at the counter."""

    __tablename__ = "payments"
    id = _id()
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    provider = Column(String(20), nullable=False)
    method = Column(String(20), nullable=False)
    status = Column(String(20), nullable=False, default=PaymentStatus.PENDING.value)
    # why staff must look (a FlagReason; credit_returned: the store credit it spent went back)
    flag_reason = Column(String(30))
    amount = Column(Money, nullable=False)
    currency = Column(String(3), nullable=False, default="MXN")
    provider_link_id = Column(String(200))  # checkout session / preference id
    provider_payment_id = Column(String(200))
    link_url = Column(String(1000))
    reference = Column(String(60))  # SPEI reference
    card_funding = Column(String(10))  # a card's SAT FormaPago: 04 credit, 28 debit (and prepaid)
    expires_at = Column(UTCDateTime)
    paid_at = Column(UTCDateTime)
    created_at = _created()
    __table_args__ = (
        UniqueConstraint("provider", "provider_payment_id"),
        UniqueConstraint("provider", "provider_link_id"),
        check_in("provider", PaymentProviderName),
        check_in("method", PaymentMethod),
        check_in("status", PaymentStatus),
        check_in("flag_reason", FlagReason),
        check_in("card_funding", CardFunding),
    )


class PaymentEvent(Base):
    """Every provider webhook received, once (unique event id): the audit trail and the replay guard."""

    __tablename__ = "payment_events"
    id = _id()
    provider = Column(String(20), nullable=False)
    event_id = Column(String(200), nullable=False)
    event_type = Column(String(100), nullable=False)
    payment_id = Column(ForeignKey("payments.id"))
    payload = Column(JSON, nullable=False)
    outcome = Column(String(30))
    received_at = _created()
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        check_in("provider", PaymentProviderName),
        check_in("outcome", PaymentEventOutcome),
    )


class Refund(Base):
    __tablename__ = "refunds"
    id = _id()
    payment_id = Column(ForeignKey("payments.id"), nullable=False, index=True)
    return_id = Column(ForeignKey("returns.id"))
    amount = Column(Money, nullable=False)
    status = Column(String(20), nullable=False, default=RefundStatus.PENDING.value)
    idempotency_key = Column(String(100), nullable=False, unique=True)
    provider_refund_id = Column(String(200), index=True)  # refund webhooks find their row by it
    reason = Column(String(300))
    actor = Column(String(100), nullable=False)
    created_at = _created()
    completed_at = Column(UTCDateTime)
    __table_args__ = (check_in("status", RefundStatus),)


class SandboxCharge(Base):
    """The sandbox provider's own books: what its hosted checkout charged or declined, kept apart from
    Comanda's payments so reconciliation compares two ledgers, as it does with a real provider."""

    __tablename__ = "sandbox_charges"
    id = Column(String(40), primary_key=True)  # the sandbox's payment id, "sbxpay_…"
    link_id = Column(String(60), nullable=False, index=True)  # the checkout token in /pay/<token>
    order_reference = Column(String(60), nullable=False)
    status = Column(String(20), nullable=False)
    amount = Column(Money, nullable=False)
    currency = Column(String(3), nullable=False)
    refunded = Column(Money, nullable=False, default=0)
    refunds = Column(JSON, nullable=False, default=dict)  # {refund id: amount}: a key refunds once
    created_at = _created()
    __table_args__ = (check_in("status", SandboxChargeStatus),)


class SandboxWebhook(Base):
    """The sandbox's outbox: the webhook of a charge, written in the transaction that books the charge and
    posted (signed afresh each time) until the back office accepts it, as a provider retries its own."""

    __tablename__ = "sandbox_webhooks"
    id = _id()
    charge_id = Column(ForeignKey("sandbox_charges.id"), nullable=False, index=True)
    event_id = Column(String(60), nullable=False, unique=True)
    body = Column(Text, nullable=False)  # the exact JSON that is signed and posted
    status = Column(String(20), nullable=False, default=SandboxWebhookStatus.PENDING.value)
    attempts = Column(Integer, nullable=False, default=0)
    # when the next attempt is due; while one runs, the end of its lease (a crashed attempt is retried then)
    next_attempt_at = Column(UTCDateTime, nullable=False, default=now)
    last_error = Column(String(1000))
    created_at = _created()
    delivered_at = Column(UTCDateTime)
    __table_args__ = (
        Index("ix_sandbox_webhooks_status_next", "status", "next_attempt_at"),
        check_in("status", SandboxWebhookStatus),
    )


# --- invoices (CFDI) -----------------------------------------------------------------------------


class Invoice(Base):
    """A CFDI 4.0: Ingreso for an order, Egreso (credit note) for a refund, or a global invoice.

    Fiscal documents are kept for 5 years and never deleted, not even by a privacy request: the receiver's
    data is copied here (no link to the customer), and ``retain_until`` says how long it must stay.
    """

    __tablename__ = "invoices"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    order_id = Column(ForeignKey("orders.id"), index=True)  # None for a global invoice
    kind = Column(String(10), nullable=False)
    status = Column(String(20), nullable=False, default=InvoiceStatus.DRAFT.value)
    series = Column(String(25))
    folio = Column(String(40))
    uuid = Column(String(36), unique=True)
    related_uuid = Column(String(36))  # the CFDI this one relates to, as relation_type says
    relation_type = Column(String(2))  # SAT TipoRelacion
    replaced_by_uuid = Column(String(36))  # FolioSustitucion when cancelled with motive 01
    # "order:<id>" while an order's Ingreso is live (unconfirmed included), "global:<store>:<period>" for a
    # global invoice; None once rejected, failed or cancelled: the database refuses a second live invoice for
    # the same thing.
    active_key = Column(String(60), unique=True)
    global_period = Column(String(10))  # global invoice: "2026-11" (monthly) or "2026-11-20" (daily)
    receiver_rfc = Column(String(13), nullable=False)
    receiver_name = Column(String(300), nullable=False)
    receiver_postal_code = Column(String(5), nullable=False)
    receiver_tax_regime = Column(String(3), nullable=False)
    cfdi_use = Column(String(4), nullable=False)
    email = Column(String(320))
    payment_form = Column(String(2))
    subtotal = Column(Money, nullable=False)
    tax = Column(Money, nullable=False)
    total = Column(Money, nullable=False)
    pac = Column(String(20))
    pac_document_id = Column(String(100))  # the provider's own id (Facturapi's invoice id)
    test_document = Column(Boolean, nullable=False, default=False)  # no fiscal validity: local PAC or a test account
    xml = Column(Text)
    pdf = Column(LargeBinary)
    cancellation_receipt = Column(Text)  # the acuse the PAC returns
    rejection_reason = Column(String(1000))
    cancellation_motive = Column(String(2))
    cancelled_at = Column(UTCDateTime)
    issued_at = Column(UTCDateTime)
    retain_until = Column(Date)  # kept at least until then: 5 years after the annual return (CFF art. 30)
    created_at = _created()
    __table_args__ = (
        check_in("kind", InvoiceKind),
        check_in("status", InvoiceStatus),
        check_in("relation_type", RelationType),
        check_in("pac", PacName),
        check_in("cancellation_motive", CancellationMotive),
    )


class InvoiceOrder(Base):
    """Orders covered by a global invoice (factura global)."""

    __tablename__ = "invoice_orders"
    invoice_id = Column(ForeignKey("invoices.id"), primary_key=True)
    order_id = Column(ForeignKey("orders.id"), primary_key=True)


# --- returns and handoff -------------------------------------------------------------------------


class Return(Base):
    """Goods coming back from a sale (comanda.services.returns): requested, approved or rejected, received,
    then settled by its outcome (refunded, credited, exchanged). Each move is a conditional UPDATE."""

    __tablename__ = "returns"
    id = _id()
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    store_id = Column(ForeignKey("stores.id"))
    conversation_id = Column(ForeignKey("conversations.id"))
    status = Column(String(20), nullable=False, default=ReturnStatus.REQUESTED.value)
    outcome = Column(String(10), nullable=False, default=ReturnOutcome.REFUND.value)
    reason_code = Column(String(20), nullable=False, default=ReturnReason.OTHER.value)
    reason = Column(String(500))  # the customer's own words
    declared_condition = Column(String(10))  # what the customer said
    received_condition = Column(String(10))  # as staff found it
    refund_amount = Column(Money, nullable=False, default=0)  # what the returned units were sold for
    credit_note_id = Column(ForeignKey("invoices.id"))
    auto_approved = Column(Boolean, nullable=False, default=False, server_default=false())
    decided_by = Column(String(100))
    rejection_reason = Column(String(500))
    # exchange: the replacement, held from the request until the goods come back, then sold as a new order at
    # the price it had at the request (replacement_amount); a difference is charged with a link or refunded
    replacement_product_id = Column(ForeignKey("products.id"))
    replacement_variant_id = Column(ForeignKey("product_variants.id"))
    replacement_reservation_id = Column(ForeignKey("reservations.id"))
    replacement_amount = Column(Money)
    exchange_order_id = Column(ForeignKey("orders.id"))
    manual_refund_reference = Column(String(100))  # cash or SPEI given back by hand: the receipt or transfer
    received_by = Column(String(100))
    created_at = _created()
    decided_at = Column(UTCDateTime)
    received_at = Column(UTCDateTime)
    completed_at = Column(UTCDateTime)
    lines = relationship("ReturnLine", cascade="all, delete-orphan", order_by="ReturnLine.id")
    __table_args__ = (
        check_in("status", ReturnStatus),
        check_in("outcome", ReturnOutcome),
        check_in("reason_code", ReturnReason),
        check_in("declared_condition", ItemCondition),
        check_in("received_condition", ReceivedCondition),
        Index("ix_returns_store_status", "store_id", "status"),
    )


class ReturnLine(Base):
    __tablename__ = "return_lines"
    id = _id()
    return_id = Column(ForeignKey("returns.id"), nullable=False, index=True)
    order_line_id = Column(ForeignKey("order_lines.id"), nullable=False)
    quantity = Column(Integer, nullable=False)
    restock = Column(Boolean, nullable=False, default=True)
    amount = Column(Money, nullable=False, default=0, server_default=text("0"))  # the units' share of the line
    order_line = relationship("OrderLine")
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class HandoffTicket(Base):
    """A conversation handed to a person; the bot stays quiet while it is open."""

    __tablename__ = "handoff_tickets"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    conversation_id = Column(ForeignKey("conversations.id"), nullable=False, index=True)
    reason = Column(String(30), nullable=False)
    status = Column(String(20), nullable=False, default=HandoffStatus.WAITING.value)
    assigned_to = Column(ForeignKey("staff_users.id"))  # who owns (owned) the chat: one person at most
    summary = Column(String(1000))
    created_at = _created()
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now, index=True)  # live inbox pages
    unanswered_notice_at = Column(UTCDateTime)  # when the customer was told nobody had picked it up yet
    # Reports: first response time = first_response_at - created_at; time to resolve = resolved_at - created_at.
    claimed_at = Column(UTCDateTime)
    first_response_at = Column(UTCDateTime)  # the first staff message that went to the customer
    resolved_at = Column(UTCDateTime)
    resolved_by = Column(ForeignKey("staff_users.id"))  # None: resolved from the command line
    __table_args__ = (
        check_in("status", HandoffStatus),
        check_in("reason", HandoffReason),
        Index("ix_handoff_tickets_store_status", "store_id", "status"),
    )


# --- purchasing ----------------------------------------------------------------------------------


class PurchaseOrder(Base):
    """An order to a supplier for one store. Low-stock alerts draft it (one draft per store and supplier:
    a partial unique index), the owner sends it, staff receive it line by line (purchase_receipts).
    On-time delivery: ``expected_on`` (the business's local date) against ``received_at`` (first full receipt)."""

    __tablename__ = "purchase_orders"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False)
    supplier_id = Column(ForeignKey("suppliers.id"), nullable=False)
    status = Column(String(20), nullable=False, default=PurchaseOrderStatus.DRAFT.value)
    expected_on = Column(Date)
    created_by = Column(String(100), nullable=False)
    created_at = _created()
    sent_at = Column(UTCDateTime)
    sent_to = Column(String(320))  # the address the PDF went to (None: sent by other means)
    received_at = Column(UTCDateTime)  # when the last line arrived in full
    cancelled_at = Column(UTCDateTime)
    lines = relationship("PurchaseOrderLine", cascade="all, delete-orphan", order_by="PurchaseOrderLine.id")
    supplier = relationship("Supplier")
    __table_args__ = (
        check_in("status", PurchaseOrderStatus),
        Index(
            "uq_purchase_orders_draft",
            "store_id",
            "supplier_id",
            unique=True,
            sqlite_where=text(f"status = '{PurchaseOrderStatus.DRAFT.value}'"),
            postgresql_where=text(f"status = '{PurchaseOrderStatus.DRAFT.value}'"),
        ),
    )


class PurchaseOrderLine(Base):
    __tablename__ = "purchase_order_lines"
    id = _id()
    purchase_order_id = Column(ForeignKey("purchase_orders.id"), nullable=False, index=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    quantity_ordered = Column(Quantity, nullable=False)
    quantity_received = Column(Quantity, nullable=False, default=0)
    unit_cost = Column(Money)  # per unit of the stock item, from the supplier's price list
    stock_item = relationship("StockItem")
    __table_args__ = (
        UniqueConstraint("purchase_order_id", "stock_item_id"),
        CheckConstraint("quantity_ordered > 0", name="quantity_ordered_positive"),
        CheckConstraint("quantity_received >= 0", name="quantity_received_not_negative"),
    )


# --- messaging -----------------------------------------------------------------------------------


class InboundMessage(Base):
    """Durable inbox: written before the webhook is acknowledged, processed once, in order."""

    __tablename__ = "inbound_messages"
    id = _id()
    channel = Column(String(20), nullable=False)
    external_id = Column(String(200), nullable=False)  # wamid / MessageSid
    store_id = Column(ForeignKey("stores.id"))
    conversation_id = Column(String(120), index=True)
    sender = Column(String(160))
    message_type = Column(String(30), nullable=False)
    payload = Column(JSON, nullable=False)
    status = Column(String(20), nullable=False, default=InboxStatus.RECEIVED.value)
    attempts = Column(Integer, nullable=False, default=0)
    error = Column(String(1000))
    # The process answering it, until lease_until: renewed while it works; once expired, any replica takes it.
    lease_owner = Column(String(80))
    lease_until = Column(UTCDateTime)
    received_at = _created()
    processed_at = Column(UTCDateTime, index=True)  # the inbox's live pages watch it
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_inbound_messages_status", "status"),
        check_in("channel", Channel),
        check_in("status", InboxStatus),
    )


class OutboundMessage(Base):
    """Durable outbox: every send is a row, retried with backoff, sent at most once."""

    __tablename__ = "outbound_messages"
    id = _id()
    channel = Column(String(20), nullable=False)
    store_id = Column(ForeignKey("stores.id"))
    conversation_id = Column(String(120), index=True)
    recipient = Column(String(160), nullable=False)
    payload = Column(JSON, nullable=False)
    # "<inbound message id>:<n>" for the n-th reply to a message: processing it again sends nothing twice
    dedupe_key = Column(String(240), unique=True)
    status = Column(String(20), nullable=False, default=OutboxStatus.QUEUED.value)
    external_id = Column(String(200), unique=True)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime)
    lease_until = Column(UTCDateTime)  # while "sending": past it, the sender is presumed dead (given up, not resent)
    last_error = Column(String(1000))
    created_at = _created()
    sent_at = Column(UTCDateTime)
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now, index=True)
    __table_args__ = (
        Index("ix_outbound_messages_status_next", "status", "next_attempt_at"),
        check_in("channel", Channel),
        check_in("status", OutboxStatus),
    )


class Notification(Base):
    """An order update to tell the customer proactively, written in the transaction of the change it
    announces and delivered once through Rasa's external events (trigger_intent)."""

    __tablename__ = "notifications"
    id = _id()
    conversation_id = Column(ForeignKey("conversations.id"), nullable=False, index=True)
    order_id = Column(ForeignKey("orders.id"), nullable=False, index=True)
    event = Column(String(20), nullable=False)
    dedupe_key = Column(String(120), nullable=False, unique=True)  # "order:42:paid": announced once
    status = Column(String(20), nullable=False, default=NotificationStatus.QUEUED.value)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime, nullable=False, default=now)
    lease_until = Column(UTCDateTime)  # while "sending": past it, the dispatcher is presumed dead (given up)
    last_error = Column(String(1000))
    created_at = _created()
    sent_at = Column(UTCDateTime)
    __table_args__ = (
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        check_in("event", NotificationEvent),
        check_in("status", NotificationStatus),
    )


class ActionRun(Base):
    """What one custom action answered for one step of one turn, written in the transaction of its work.

    Rasa may call an action again for the same step (a retry after the action server died or timed out);
    the stored answer is replayed instead of doing the work twice (placing an order, opening a link)."""

    __tablename__ = "action_runs"
    id = _id()
    conversation_id = Column(String(120), nullable=False)
    message_id = Column(String(200), nullable=False)  # the inbound message the turn answers
    action_name = Column(String(100), nullable=False)
    position = Column(Integer, nullable=False)  # actions run since that message, before this one
    response = Column(JSON, nullable=False)  # {"events": [...], "responses": [...]}
    created_at = _created()
    __table_args__ = (UniqueConstraint("conversation_id", "message_id", "action_name", "position"),)


# --- privacy and audit ---------------------------------------------------------------------------


class PrivacyRequest(Base):
    __tablename__ = "privacy_requests"
    id = _id()
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    kind = Column(String(20), nullable=False)
    status = Column(String(20), nullable=False, default=PrivacyRequestStatus.OPEN.value)
    created_at = _created()
    completed_at = Column(UTCDateTime)
    __table_args__ = (check_in("kind", PrivacyRequestKind), check_in("status", PrivacyRequestStatus))


class AuditEvent(Base):
    """Who did what to which record, for changes that have no ledger of their own."""

    __tablename__ = "audit_events"
    id = _id()
    actor = Column(String(100), nullable=False)
    action = Column(String(60), nullable=False)
    entity_type = Column(String(40), nullable=False)
    entity_id = Column(String(60), nullable=False)
    data = Column(JSON, nullable=False, default=dict)
    ip = Column(String(45))  # where a staff member acted from (None: the command line, the system)
    created_at = _created()
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)


# --- handoff inbox -------------------------------------------------------------------------------


class HandoffReply(Base):
    """A message staff sent in a handed-over chat: its outbox row carries the delivery status, and it is
    appended to Rasa's tracker (a BotUttered with metadata from=staff) so the history is complete."""

    __tablename__ = "handoff_replies"
    id = _id()
    ticket_id = Column(ForeignKey("handoff_tickets.id"), nullable=False, index=True)
    staff_id = Column(ForeignKey("staff_users.id"), nullable=False)
    outbound_message_id = Column(ForeignKey("outbound_messages.id"), nullable=False, unique=True)
    text = Column(Text, nullable=False)  # what the customer reads (a template with its parameters filled in)
    template = Column(String(100))  # the approved template's name, outside the 24-hour window
    params = Column(JSON, nullable=False, default=list)
    in_tracker = Column(Boolean, nullable=False, default=False)  # appended to Rasa's tracker yet
    created_at = _created()


class HandoffNote(Base):
    """A private note on a ticket: staff see it, the customer never does."""

    __tablename__ = "handoff_notes"
    id = _id()
    ticket_id = Column(ForeignKey("handoff_tickets.id"), nullable=False, index=True)
    staff_id = Column(ForeignKey("staff_users.id"), nullable=False)
    text = Column(String(2000), nullable=False)
    created_at = _created()


class CustomerMedia(Base):
    """A photo, voice note or document a customer sent, downloaded once from the Graph API and kept, since
    Meta's copy expires."""

    __tablename__ = "customer_media"
    id = _id()
    inbound_message_id = Column(ForeignKey("inbound_messages.id"), nullable=False, unique=True)
    media_id = Column(String(200), nullable=False)
    mime_type = Column(String(100), nullable=False)
    filename = Column(String(255))
    sha256 = Column(String(64), nullable=False)
    size = Column(Integer, nullable=False)
    data = Column(LargeBinary, nullable=False)
    created_at = _created()


# --- store credit --------------------------------------------------------------------------------


class StoreCreditMovement(Base):
    """The store-credit ledger (saldo a favor): a customer's balance at a business is the sum of their rows.

    A return credits once (unique kind + return) and an order spends once (unique kind + order)."""

    __tablename__ = "store_credit_movements"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    kind = Column(String(20), nullable=False)
    amount = Column(Money, nullable=False)  # + credited, − spent
    return_id = Column(ForeignKey("returns.id"))
    order_id = Column(ForeignKey("orders.id"))
    actor = Column(String(100), nullable=False)
    note = Column(String(300))
    created_at = _created()
    __table_args__ = (
        check_in("kind", StoreCreditKind),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        UniqueConstraint("kind", "return_id"),
        UniqueConstraint("kind", "order_id"),
        Index("ix_store_credit_movements_customer", "business_id", "customer_id"),
    )


# --- purchasing: price lists, receipts, stock counts ---------------------------------------------


class SupplierPrice(Base):
    """A supplier's price for one stock item, per unit of the item (catalog: ``suppliers[].prices``)."""

    __tablename__ = "supplier_prices"
    supplier_id = Column(ForeignKey("suppliers.id"), primary_key=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), primary_key=True)
    unit_cost = Column(Money, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False, default=now, onupdate=now)


class PurchaseReceipt(Base):
    """One delivery at the back door: what arrived of which lines, when, and who took it in."""

    __tablename__ = "purchase_receipts"
    id = _id()
    purchase_order_id = Column(ForeignKey("purchase_orders.id"), nullable=False, index=True)
    received_at = _created()
    actor = Column(String(100), nullable=False)
    note = Column(String(500))
    lines = relationship("PurchaseReceiptLine", cascade="all, delete-orphan", order_by="PurchaseReceiptLine.id")


class PurchaseReceiptLine(Base):
    __tablename__ = "purchase_receipt_lines"
    id = _id()
    receipt_id = Column(ForeignKey("purchase_receipts.id"), nullable=False, index=True)
    purchase_order_line_id = Column(ForeignKey("purchase_order_lines.id"), nullable=False)
    quantity = Column(Quantity, nullable=False)
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)


class StockCount(Base):
    """Staff counted some shelves: each difference with the books is an ``adjustment`` movement (its
    reference is this count) with the line's reason (waste, breakage, count correction)."""

    __tablename__ = "stock_counts"
    id = _id()
    store_id = Column(ForeignKey("stores.id"), nullable=False, index=True)
    actor = Column(String(100), nullable=False)
    note = Column(String(500))
    created_at = _created()
    lines = relationship("StockCountLine", cascade="all, delete-orphan", order_by="StockCountLine.id")


class StockCountLine(Base):
    __tablename__ = "stock_count_lines"
    id = _id()
    count_id = Column(ForeignKey("stock_counts.id"), nullable=False, index=True)
    stock_item_id = Column(ForeignKey("stock_items.id"), nullable=False)
    expected = Column(Quantity, nullable=False)  # on hand in the books when counted
    counted = Column(Quantity, nullable=False)
    reason = Column(String(20), nullable=False)
    stock_item = relationship("StockItem")
    __table_args__ = (
        check_in("reason", StockAdjustmentReason),
        CheckConstraint("counted >= 0", name="counted_not_negative"),
        UniqueConstraint("count_id", "stock_item_id"),
    )


# --- customers (CRM): consent history, tags, notes -----------------------------------------------


class ConsentEvent(Base):
    """Every consent given or withdrawn, with when and where (the customer's flags hold the current state)."""

    __tablename__ = "consent_events"
    id = _id()
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    kind = Column(String(20), nullable=False)
    granted = Column(Boolean, nullable=False)
    source = Column(String(20), nullable=False)
    actor = Column(String(100), nullable=False)
    created_at = _created()
    __table_args__ = (check_in("kind", ConsentKind), check_in("source", ConsentSource))


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    id = _id()
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    tag = Column(String(40), nullable=False)  # lower-case
    added_by = Column(String(100), nullable=False)
    created_at = _created()
    __table_args__ = (UniqueConstraint("customer_id", "tag"),)


class CustomerNote(Base):
    __tablename__ = "customer_notes"
    id = _id()
    customer_id = Column(ForeignKey("customers.id"), nullable=False, index=True)
    body = Column(String(2000), nullable=False)
    author = Column(String(100), nullable=False)
    created_at = _created()


# --- reports -------------------------------------------------------------------------------------


class ReportExport(Base):
    """One business's daily export of a day's reports. A row per day, claimed once: the back office whose
    insert wins writes it; another takes it over only when the claim's lease ran out (its holder died)."""

    __tablename__ = "report_exports"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    day = Column(Date, nullable=False)  # the business's local day the files cover
    status = Column(String(20), nullable=False, default=ReportExportStatus.RUNNING.value)
    claimed_by = Column(String(80), nullable=False)  # host:pid of the process writing it
    attempts = Column(Integer, nullable=False, default=1)
    lease_until = Column(UTCDateTime, nullable=False)  # running: the claim's end; failed: when to try again
    files = Column(JSON, nullable=False, default=list)  # paths written under COMANDA_EXPORT_DIR
    emailed_to = Column(String(1000))
    error = Column(String(1000))
    created_at = _created()
    finished_at = Column(UTCDateTime)
    __table_args__ = (UniqueConstraint("business_id", "day"), check_in("status", ReportExportStatus))


# Reports read sales by store and the time they entered the queue, and refunds by the time they went back.
Index("ix_orders_store_confirmed", Order.store_id, Order.confirmed_at)
Index("ix_refunds_completed_at", Refund.completed_at)

# --- review inbox and training (owners teach the bot) ----------------------------------------------


class ReviewItem(Base):
    """A message the bot was unsure about, grouped by its text within a business: what the NLU read the
    last time, how often and where it was seen, and the owner's decision once there is one."""

    __tablename__ = "review_items"
    id = _id()
    business_id = Column(ForeignKey("businesses.id"), nullable=False)
    text = Column(Text, nullable=False)
    text_key = Column(String(400), nullable=False)  # lower case, spaces collapsed: identical texts group
    language = Column(String(2))  # the latest sighting's
    intent = Column(String(100))  # predicted (FAQ topics as faq/<topic>)
    confidence = Column(Float)
    runner_up = Column(String(100))
    runner_up_confidence = Column(Float)
    ranking = Column(JSON, nullable=False, default=list)  # [{"name", "confidence"}], best first
    items = Column(JSON, nullable=False, default=list)  # order lines read: [{"sku", "quantity", ...}]
    unplaced = Column(JSON, nullable=False, default=list)  # words the catalog reading could not place
    reason = Column(String(20), nullable=False)  # the latest sighting's
    count = Column(Integer, nullable=False, default=0)
    first_seen_at = _created()
    last_seen_at = Column(UTCDateTime, nullable=False, default=now)
    last_conversation_id = Column(String(120))
    status = Column(String(20), nullable=False, default=ReviewStatus.WAITING.value)
    decision = Column(JSON)  # {"intent", "items", "synonyms", "faq"}: what the owner decided
    decided_by = Column(String(100))
    decided_at = Column(UTCDateTime)
    __table_args__ = (
        UniqueConstraint("business_id", "text_key"),
        check_in("status", ReviewStatus),
        check_in("reason", ReviewReason),
        Index("ix_review_items_status_last", "status", "last_seen_at"),
    )


class ReviewSighting(Base):
    """One customer message behind a review item (a tracker saved twice records it once)."""

    __tablename__ = "review_sightings"
    id = _id()
    item_id = Column(ForeignKey("review_items.id"), nullable=False, index=True)
    store_id = Column(ForeignKey("stores.id"), nullable=False, index=True)
    conversation_id = Column(String(120), nullable=False)
    message_id = Column(String(200), nullable=False)
    language = Column(String(2))
    reason = Column(String(20), nullable=False)
    seen_at = Column(UTCDateTime, nullable=False, default=now)
    __table_args__ = (UniqueConstraint("conversation_id", "message_id", "reason"), check_in("reason", ReviewReason))


class TrainingRun(Base):
    """One `comanda train`: its progress as it happens (the console streams it), the evaluation of the new
    model against the active one, and whether the new model was activated."""

    __tablename__ = "training_runs"
    id = _id()
    status = Column(String(20), nullable=False, default=TrainingRunStatus.RUNNING.value)
    started_by = Column(String(100), nullable=False)
    forced = Column(Boolean, nullable=False, default=False)
    progress = Column(Text, nullable=False, default="")  # one line per step, appended
    model_path = Column(String(500))  # the new model
    previous_model_path = Column(String(500))  # the model active before (for --rollback)
    comparison = Column(JSON)  # {"new": {...}, "active": {...}, "changed": [...], "not_worse": bool}
    error = Column(String(1000))
    started_at = _created()
    finished_at = Column(UTCDateTime)
    __table_args__ = (check_in("status", TrainingRunStatus),)

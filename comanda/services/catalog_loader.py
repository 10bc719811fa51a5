"""Load a business from a catalog file (the demo: data/demo/catalog.yml) into the store.

Loading is idempotent: catalog definitions are inserted or brought up to date, and running it twice
changes nothing. Stock is live data, so it is only set when an item first appears at a store, as an
``opening`` movement in the ledger; later loads never overwrite what the shop has sold or received.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Dict, Iterable, List, Optional, Protocol, Type, TypeVar

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from comanda import models as m
from comanda.enums import (
    ItemCondition,
    Language,
    MovementReason,
    PaymentMethod,
    RefundMoment,
    StockItemKind,
    values_in,
)
from comanda.errors import InvalidInput
from comanda.money import money
from comanda.services.handoff_messages import handoff_settings


class _Mapped(Protocol):
    """A model class: what the report counts rows of."""

    __tablename__: ClassVar[str]


T = TypeVar("T", bound=_Mapped)
# What a business may offer (catalog: business.payment_methods); store credit offers itself to who has a balance.
OFFERED_PAYMENT_METHODS = values_in(p for p in PaymentMethod if p is not PaymentMethod.STORE_CREDIT)


@dataclass
class LoadReport:
    created: Dict[str, int] = field(default_factory=dict)
    updated: Dict[str, int] = field(default_factory=dict)

    def count(self, bucket: Dict[str, int], table: str) -> None:
        bucket[table] = bucket.get(table, 0) + 1

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def read_catalog(path: Path) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"catalog file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"catalog file is not valid YAML: {path}: {exc}") from exc
    if not isinstance(data, dict) or "business" not in data or "products" not in data:
        raise InvalidInput(f"catalog file needs `business` and `products`: {path}")
    return data


class _Loader:
    def __init__(self, session: Session, report: LoadReport) -> None:
        self.session = session
        self.report = report

    def upsert(self, model: Type[T], key: Dict[str, Any], values: Dict[str, Any]) -> T:
        """Insert the row, or update only the fields that differ; count what happened."""
        row = self.session.execute(select(model).filter_by(**key)).scalar_one_or_none()
        if row is None:
            row = model(**key, **values)
            self.session.add(row)
            self.session.flush()
            self.report.count(self.report.created, model.__tablename__)
            return row
        changed = False
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed = True
        if changed:
            self.session.flush()
            self.report.count(self.report.updated, model.__tablename__)
        return row

    def open_stock(self, store_id: str, item: m.StockItem, quantity: Any) -> None:
        """First sight of an item at a store: its level and the opening movement that explains it."""
        level = self.session.get(m.StockLevel, (store_id, item.id))
        if level is not None:
            return
        quantity = Decimal(str(quantity or 0))
        self.session.add(m.StockLevel(store_id=store_id, stock_item_id=item.id, on_hand=quantity, reserved=0))
        self.report.count(self.report.created, m.StockLevel.__tablename__)
        if quantity:
            self.session.add(
                m.StockMovement(
                    store_id=store_id,
                    stock_item_id=item.id,
                    reason=MovementReason.OPENING,
                    on_hand_delta=quantity,
                    reserved_delta=0,
                    reference_type="seed",
                    actor="system",
                    note="catalog load",
                )
            )
            self.report.count(self.report.created, m.StockMovement.__tablename__)
        self.session.flush()


def load_catalog(session: Session, data: Dict[str, Any]) -> LoadReport:
    report = LoadReport()
    load = _Loader(session, report)
    biz = data["business"]
    business_id = biz.get("id") or _slug(biz["name"])
    policies = biz.get("policies", {})
    issuer = biz.get("issuer", {})
    load.upsert(
        m.Business,
        {"id": business_id},
        {
            "name": biz["name"],
            "timezone": biz.get("timezone", "America/Mexico_City"),
            "currency": biz.get("currency", "MXN"),
            "default_language": _choice(Language, biz.get("default_language", Language.ES)),
            "privacy_notice_url": biz.get("privacy_notice_url"),
            "issuer_rfc": issuer.get("rfc"),
            "issuer_legal_name": issuer.get("legal_name"),
            "issuer_tax_regime": issuer.get("tax_regime"),
            "issuer_csd": issuer.get("csd"),
            "reservation_hold_minutes": policies.get("reservation_hold_minutes", 15),
            "payment_link_expiry_minutes": policies.get("payment_link_expiry_minutes", 15),
            "return_window_days": policies.get("return_window_days", 30),
            "invoice_deadline": policies.get("invoice_deadline", "same_month"),
            "auto_approve_refund_up_to": money(policies.get("auto_approve_refund_up_to_mxn", 0)),
            "return_refund_on": _choice(RefundMoment, policies.get("return_refund_on", RefundMoment.RECEIVED)),
            "handoff_after_consecutive_fallbacks": policies.get("handoff_after_consecutive_fallbacks", 2),
            "handoff_unanswered_minutes": policies.get("handoff_unanswered_minutes", 10),
            "payment_methods": _payment_methods(biz.get("payment_methods", [PaymentMethod.CASH.value])),
            "faq": data.get("faq", {}),
        },
    )

    store_ids = []
    for store in data.get("stores", []):
        delivery = store.get("delivery", {})
        available = bool(delivery.get("available"))
        row = load.upsert(
            m.Store,
            {"id": store["id"]},
            {
                "business_id": business_id,
                "name": store["name"],
                "whatsapp_phone_number_id": store.get("whatsapp_phone_number_id"),
                "whatsapp_display_number": store.get("whatsapp_display_number"),
                "address": store["address"],
                "postal_code": store["postal_code"],
                "hours": store.get("hours", {}),
                "delivery_available": available,
                "delivery_fee": money(delivery["fee_mxn"]) if available else None,
                "delivery_min_order": money(delivery.get("min_order_mxn", 0)) if available else None,
                "delivery_radius_km": _decimal(delivery.get("radius_km")) if available else None,
                "latitude": _decimal((store.get("location") or {}).get("latitude")),
                "longitude": _decimal((store.get("location") or {}).get("longitude")),
                "ticket_prefix": str(store.get("ticket_prefix") or store["id"][0]).upper(),
                "queue_warn_minutes": int((store.get("queue") or {}).get("warn_minutes", 10)),
                "queue_late_minutes": int((store.get("queue") or {}).get("late_minutes", 20)),
                **handoff_settings(store["id"], store.get("handoff") or {}),
            },
        )
        for cp in delivery.get("postal_codes", []) if available else []:
            load.upsert(m.StoreDeliveryPostalCode, {"store_id": row.id, "postal_code": str(cp)}, {})
        store_ids.append(row.id)

    for position, cat in enumerate(data.get("categories", [])):
        load.upsert(
            m.Category,
            {"id": cat["id"]},
            {
                "business_id": business_id,
                "name_es": cat["es"],
                "name_en": cat["en"],
                "position": position,
            },
        )
    known_categories = {c["id"] for c in data.get("categories", [])}
    for product in data["products"]:
        if product["category"] not in known_categories:
            label = product["category"].replace("_", " ").capitalize()
            load.upsert(
                m.Category,
                {"id": product["category"]},
                {
                    "business_id": business_id,
                    "name_es": label,
                    "name_en": label,
                    "position": 999,
                },
            )
            known_categories.add(product["category"])

    for sup in data.get("suppliers", []):
        load.upsert(
            m.Supplier,
            {"id": sup["id"]},
            {
                "business_id": business_id,
                "name": sup["name"],
                "email": sup.get("email"),
                "delivery_days": list(sup.get("delivers", [])),
                "lead_time_days": sup.get("lead_time_days", 1),
                "language": sup.get("language", "es"),
            },
        )

    ingredients: Dict[str, m.StockItem] = {}
    for ing in data.get("ingredients", []):
        item = load.upsert(
            m.StockItem,
            {"business_id": business_id, "code": ing["id"]},
            {
                "kind": StockItemKind.INGREDIENT,
                "name": ing["name"],
                "unit": ing.get("unit", "pz"),
                "supplier_id": ing.get("supplier"),
                **_reorder(ing),
            },
        )
        ingredients[ing["id"]] = item
        for store_id in store_ids:
            load.open_stock(store_id, item, ing.get("stock", {}).get(store_id, 0))

    for group_id, group in (data.get("modifier_groups") or {}).items():
        max_choices = group.get("max_choices", 1)
        if not isinstance(max_choices, int) or max_choices < 1:
            raise InvalidInput(f"modifier group {group_id!r}: max_choices must be a whole number ≥ 1")
        load.upsert(m.ModifierGroup, {"id": group_id}, {"business_id": business_id, "max_choices": max_choices})
        for position, opt in enumerate(group.get("options", [])):
            option = load.upsert(
                m.ModifierOption,
                {"group_id": group_id, "code": str(opt["id"])},
                {
                    "name_es": opt["es"],
                    "name_en": opt["en"],
                    "price_delta": money(opt.get("price_delta_mxn", 0)),
                    "is_default": bool(opt.get("default", False)),
                    "synonyms": list(opt.get("synonyms", [])),
                    "position": position,
                },
            )
            _load_ingredient_effects(load, group_id, option, opt, ingredients)

    for product in data["products"]:
        _load_product(load, business_id, product, store_ids, ingredients)
    for sup in data.get("suppliers", []):
        _load_price_list(load, business_id, sup)
    return report


def _load_price_list(load: _Loader, business_id: str, spec: Dict[str, Any]) -> None:
    """``prices: {coffee_beans: 0.42, CAFE-GRANO-250: 95}``: the supplier's cost per unit of each stock item
    (an ingredient's unit, a product's piece), which purchase orders copy. Optional."""
    prices = spec.get("prices") or {}
    if not isinstance(prices, dict):
        raise InvalidInput(f"supplier {spec['id']!r}: prices must map stock item codes to a cost in MXN")
    for code, cost in prices.items():
        item = load.session.execute(
            select(m.StockItem).where(m.StockItem.business_id == business_id, m.StockItem.code == str(code))
        ).scalar_one_or_none()
        if item is None:
            raise InvalidInput(f"supplier {spec['id']!r}: prices name unknown stock item {code!r}")
        amount = _decimal(cost)
        if amount is None or amount < 0:
            raise InvalidInput(f"supplier {spec['id']!r}: the price of {code!r} must be a cost ≥ 0 in MXN")
        load.upsert(
            m.SupplierPrice, {"supplier_id": spec["id"], "stock_item_id": item.id}, {"unit_cost": money(amount)}
        )


def _load_product(
    load: _Loader, business_id: str, spec: Dict[str, Any], store_ids: List[str], ingredients: Dict[str, m.StockItem]
) -> None:
    sku = spec["sku"]
    axes = _variant_axes(spec.get("variants") or {})
    stock_item: Optional[m.StockItem] = None
    if "recipe" not in spec and not axes:
        stock_item = load.upsert(
            m.StockItem,
            {"business_id": business_id, "code": sku},
            {
                "kind": StockItemKind.PRODUCT,
                "name": spec["es"],
                "unit": "pz",
                "supplier_id": spec.get("supplier"),
                **_reorder(spec),
            },
        )
        for store_id in store_ids:
            load.open_stock(store_id, stock_item, spec.get("stock", {}).get(store_id, 0))
    product = load.upsert(
        m.Product,
        {"business_id": business_id, "sku": sku},
        {
            "name_es": spec["es"],
            "name_en": spec["en"],
            "category_id": spec["category"],
            "price": money(spec["price_mxn"]),
            "sat_prod_serv": str(spec["sat"]["prod_serv"]),
            "sat_unit": str(spec["sat"]["unit"]),
            "returnable": bool(spec.get("returnable", False)),
            "return_window_days": spec.get("return_window_days"),
            "return_condition": _choice(ItemCondition, spec.get("return_condition", ItemCondition.ANY)),
            "stock_item_id": stock_item.id if stock_item else None,
            "variant_axes": axes,
            "active": True,
        },
    )
    for synonym in _unique(spec.get("synonyms", [])):
        load.upsert(m.ProductSynonym, {"product_id": product.id, "text": synonym}, {})
    for position, group_id in enumerate(spec.get("modifiers", [])):
        load.upsert(m.ProductModifierGroup, {"product_id": product.id, "group_id": group_id}, {"position": position})
    for ingredient_id, quantity in (spec.get("recipe") or {}).items():
        if ingredient_id not in ingredients:
            raise InvalidInput(f"{sku}: recipe names unknown ingredient {ingredient_id!r}")
        load.upsert(
            m.RecipeLine,
            {"product_id": product.id, "stock_item_id": ingredients[ingredient_id].id},
            {"quantity": Decimal(str(quantity))},
        )
    if axes:
        names = list(axes)
        for combo in itertools.product(*(axes[n] for n in names)):
            attributes = {name: opt["id"] for name, opt in zip(names, combo, strict=False)}
            variant_sku = "-".join([sku] + [str(opt["id"]).upper() for opt in combo])
            label = " ".join([spec["es"]] + [str(opt["es"]) for opt in combo])
            item = load.upsert(
                m.StockItem,
                {"business_id": business_id, "code": variant_sku},
                {
                    "kind": StockItemKind.VARIANT,
                    "name": label,
                    "unit": "pz",
                    "supplier_id": spec.get("supplier"),
                    **_reorder(spec),
                },
            )
            load.upsert(
                m.ProductVariant,
                {"sku": variant_sku},
                {
                    "product_id": product.id,
                    "attributes": attributes,
                    "stock_item_id": item.id,
                    "active": True,
                },
            )
            for store_id in store_ids:
                load.open_stock(store_id, item, (spec.get("stock_per_variant") or {}).get(store_id, 0))


def _load_ingredient_effects(
    load: _Loader, group_id: str, option: m.ModifierOption, spec: Dict[str, Any], ingredients: Dict[str, m.StockItem]
) -> None:
    """``removes: [tapioca]`` and ``replaces: {milk: oat_milk}``: what the option does to recipes.
    Effects no longer in the file are deleted, so the catalog file stays the truth."""
    effects: Dict[str, Optional[str]] = {code: None for code in spec.get("removes") or []}
    effects.update(spec.get("replaces") or {})
    wanted = set()
    for code, replacement in effects.items():
        for name in (code, replacement):
            if name is not None and name not in ingredients:
                raise InvalidInput(f"modifier option {group_id}/{option.code} names unknown ingredient {name!r}")
        item_id = ingredients[code].id
        wanted.add(item_id)
        load.upsert(
            m.ModifierOptionIngredient,
            {"option_id": option.id, "stock_item_id": item_id},
            {"replacement_id": ingredients[replacement].id if replacement else None},
        )
    for stale in load.session.execute(
        select(m.ModifierOptionIngredient).where(
            m.ModifierOptionIngredient.option_id == option.id,
            m.ModifierOptionIngredient.stock_item_id.not_in(wanted),
        )
    ).scalars():
        load.session.delete(stale)
        load.report.count(load.report.updated, m.ModifierOptionIngredient.__tablename__)


def _variant_axes(variants: Dict[str, Any]) -> Dict[str, List[Dict[str, Any]]]:
    """Variant options as labelled dicts; plain codes (``[CH, M]``) get the code as both labels."""
    axes = {}
    for axis, options in variants.items():
        axes[axis] = [
            {
                "id": str(o["id"]),
                "es": str(o.get("es", o["id"])),
                "en": str(o.get("en", o["id"])),
                "synonyms": list(o.get("synonyms", [])),
            }
            if isinstance(o, dict)
            else {"id": str(o), "es": str(o), "en": str(o), "synonyms": []}
            for o in options
        ]
    return axes


def _decimal(value: Any) -> Optional[Decimal]:
    """YAML numbers are floats: read them through their text, which is what the file says."""
    return Decimal(str(value)) if value is not None else None


def _reorder(spec: Dict[str, Any]) -> Dict[str, Any]:
    return {"reorder_point": _decimal(spec.get("reorder_point")), "reorder_qty": _decimal(spec.get("reorder_qty"))}


def _unique(items: Iterable[str]) -> List[str]:
    seen, out = set(), []
    for item in items:
        key = item.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(item.strip())
    return out


def _slug(name: str) -> str:
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "-".join(ascii_name.lower().split())


def _payment_methods(codes: Any) -> List[str]:
    """The business's payment methods as the catalog lists them: at least one, each once, in its order."""
    if isinstance(codes, str) or not isinstance(codes, list) or not codes:
        raise InvalidInput(f"business.payment_methods must be a list of payment method codes, not {codes!r}")
    unknown = [code for code in codes if code not in OFFERED_PAYMENT_METHODS]
    if unknown:
        raise InvalidInput(
            f"business.payment_methods: unknown payment method {', '.join(map(repr, unknown))}; "
            f"the codes are {', '.join(OFFERED_PAYMENT_METHODS)}"
        )
    return list(dict.fromkeys(codes))


def _choice(enum: Any, value: Any) -> str:
    """A policy value the catalog names, refused with the allowed ones when it is not one of them."""
    member = enum.parse(value)
    if member is None:
        raise InvalidInput(f"{value!r} is not one of {', '.join(enum.values())}")
    return str(member)

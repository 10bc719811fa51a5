"""The menu a store can sell now, by category, in the customer's language."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from comanda import models as m
from comanda.services.stock import sellable_by_product
from comanda.services.stores import get_store


@dataclass(frozen=True)
class MenuItem:
    sku: str
    name: str
    price: Decimal


@dataclass
class MenuSection:
    category_id: str
    title: str
    items: List[MenuItem] = field(default_factory=list)


def store_menu(session: Session, store_id: str, language: str) -> List[MenuSection]:
    """Active products with stock at this store (a branch without a kitchen shows no tacos)."""
    store = get_store(session, store_id)
    products = (
        session.execute(
            select(m.Product)
            .join(m.Category)
            .where(m.Product.business_id == store.business_id, m.Product.active.is_(True))
            .order_by(m.Category.position, m.Product.id)
            .options(selectinload(m.Product.recipe), selectinload(m.Product.variants), selectinload(m.Product.category))
        )
        .scalars()
        .all()
    )
    sellable = sellable_by_product(session, store_id, products)
    sections: List[MenuSection] = []
    for product in products:
        if sellable[product.id] <= 0:
            continue
        if not sections or sections[-1].category_id != product.category_id:
            title = product.category.name_en if language == "en" else product.category.name_es
            sections.append(MenuSection(product.category_id, title))
        sections[-1].items.append(MenuItem(product.sku, product.name(language), product.price))
    return sections


def suggested_order(session: Session, store_id: str, language: str) -> Optional[Tuple[str, str]]:
    """Two things this store sells now, from different categories if it has them, to show how to order
    ("2 Taco al pastor y Agua de horchata" at a branch with a kitchen, never tacos where there is none)."""
    items = [section.items[0].name for section in store_menu(session, store_id, language)][:2]
    if len(items) < 2:
        items = [item.name for section in store_menu(session, store_id, language) for item in section.items][:2]
    return (items[0], items[1]) if len(items) == 2 else None

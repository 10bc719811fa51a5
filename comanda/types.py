"""Column types that keep money, quantities and times exact on both SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from comanda.money import money


class _ExactDecimal(TypeDecorator):
    """NUMERIC on PostgreSQL; on SQLite (no decimal type) a REAL read back and rounded to scale."""

    impl = Numeric
    cache_ok = True
    precision = 14
    scale = 2

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=False))
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def _quantize(self, value: Any) -> Decimal:
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.scale))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"{type(self).__name__} columns take Decimal, not float")
        quantized = self._quantize(value)
        return float(quantized) if dialect.name == "sqlite" else quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Optional[Decimal]:
        if value is None:
            return None
        return self._quantize(round(value, self.scale) if isinstance(value, float) else value)


class Money(_ExactDecimal):
    """An amount in MXN, 2 places."""

    cache_ok = True
    precision = 12
    scale = 2

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None and not isinstance(value, float):
            value = money(value)
        return super().process_bind_param(value, dialect)


class Quantity(_ExactDecimal):
    """Stock in its unit (pieces, grams, millilitres): 3 places are enough for all of them."""

    cache_ok = True
    precision = 14
    scale = 3


class Coordinate(_ExactDecimal):
    """Latitude or longitude in degrees: 6 places locate a door (about 10 cm)."""

    cache_ok = True
    precision = 9
    scale = 6


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use comanda.clock.now()")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Optional[datetime], dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

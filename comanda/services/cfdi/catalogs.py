"""The SAT catalogs the core needs (comanda/sat/, see its SOURCES.md) and the chat's offer lists.

Person types come from the RFC: 12 characters is a company (persona moral), 13 a person (persona física),
and the two generic RFCs have their own rules: XAXX010101000 (public in general, a national customer without
RFC) and XEXX010101000 (a foreign customer) both take régimen 616 and uso S01 only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

from comanda.i18n import language_or_default

SAT_DIR = Path(__file__).resolve().parents[2] / "sat"

GENERIC_NATIONAL = "XAXX010101000"
GENERIC_FOREIGN = "XEXX010101000"
GENERIC_REGIME = "616"
GENERIC_USE = "S01"
PUBLIC_IN_GENERAL = "PUBLICO EN GENERAL"

FISICA, MORAL, GENERIC = "fisica", "moral", "generic"


@dataclass(frozen=True)
class Option:
    """One row of a WhatsApp list: ``id`` is the SAT code the customer picks."""

    id: str
    title: str  # ≤ 24 characters
    description: str  # ≤ 72 characters


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    sat: str  # SAT's own description
    person_types: Tuple[str, ...]
    labels: Dict[str, Dict[str, str]]  # {"es": {"title": ..., "description": ...}, "en": {...}}
    regimes: Tuple[str, ...] = ()  # uses only: the receiver regimes SAT allows

    def option(self, language: str) -> Option:
        label = self.labels[language_or_default(language)]
        return Option(self.code, label["title"], label["description"])


def _entries(filename: str) -> Dict[str, CatalogEntry]:
    rows = yaml.safe_load((SAT_DIR / filename).read_text(encoding="utf-8"))
    return {
        row["code"]: CatalogEntry(
            code=row["code"],
            sat=row["sat"],
            person_types=tuple(kind for kind in (FISICA, MORAL) if row[kind]),
            labels={"es": row["es"], "en": row["en"]},
            regimes=tuple(row.get("regimes", ())),
        )
        for row in rows
    }


@lru_cache(maxsize=1)
def regimes() -> Dict[str, CatalogEntry]:
    """c_RegimenFiscal, in offer order."""
    return _entries("regimenes.yml")


@lru_cache(maxsize=1)
def uses() -> Dict[str, CatalogEntry]:
    """c_UsoCFDI for sale invoices, in offer order."""
    return _entries("usos_cfdi.yml")


@lru_cache(maxsize=1)
def _postal_code_ranges() -> Tuple[List[int], List[int]]:
    starts, ends = [], []
    for line in (SAT_DIR / "codigos_postales.txt").read_text().split():
        low, _, high = line.partition("-")
        starts.append(int(low))
        ends.append(int(high or low))
    return starts, ends


def postal_code_exists(postal_code: str) -> bool:
    """Whether SAT's c_CodigoPostal has this 5-digit code."""
    if len(postal_code) != 5 or not postal_code.isdigit():
        return False
    starts, ends = _postal_code_ranges()
    index = bisect.bisect_right(starts, int(postal_code)) - 1
    return index >= 0 and int(postal_code) <= ends[index]


def person_type(rfc: str) -> str:
    """fisica, moral or generic, from a well-formed RFC."""
    if rfc in (GENERIC_NATIONAL, GENERIC_FOREIGN):
        return GENERIC
    return MORAL if len(rfc) == 12 else FISICA


def regime_allowed(regime: str, kind: str) -> bool:
    if kind == GENERIC:
        return regime == GENERIC_REGIME
    entry = regimes().get(regime)
    return entry is not None and kind in entry.person_types


def use_allowed(use: str, regime: str, kind: str) -> bool:
    if kind == GENERIC:
        return use == GENERIC_USE and regime == GENERIC_REGIME
    entry = uses().get(use)
    return entry is not None and kind in entry.person_types and regime in entry.regimes


def regime_options(rfc: str, language: str) -> List[Option]:
    """The regimes to offer for an RFC: valid for its person type and with at least one use allowed."""
    kind = person_type(rfc)
    return [
        entry.option(language)
        for code, entry in regimes().items()
        if regime_allowed(code, kind) and any(use_allowed(use, code, kind) for use in uses())
    ]


def use_options(rfc: str, regime: str, language: str) -> List[Option]:
    """The uses SAT allows for this RFC's person type and this regime."""
    kind = person_type(rfc)
    return [entry.option(language) for code, entry in uses().items() if use_allowed(code, regime, kind)]


def regime_label(code: str, language: str) -> str:
    """ "612 Act. empresarial", for summaries; an unknown code stays as it is."""
    entry = regimes().get(code)
    return entry.option(language).title if entry else code


def use_label(code: str, language: str) -> str:
    entry = uses().get(code)
    return entry.option(language).title if entry else code

"""A customer's fiscal data, checked field by field before anything is sealed or stamped.

Each ``check_*`` returns the problems of one field (empty when it is fine), so the chat can validate a slot as
soon as it is filled and ask again with the right explanation. The rules are SAT's (Anexo 20, CFDI 4.0):

- RFC: 12 characters for a company (3 letters), 13 for a person (4 letters), then the date (YYMMDD) and a
  3-character homoclave whose last character is a check digit (modulo 11). The generic RFCs XAXX010101000 and
  XEXX010101000 have no valid check digit and are accepted as they are.
- Name: exactly as on the Constancia de Situación Fiscal, upper case, and for a company without the capital
  regime ("SA DE CV", "S DE RL DE CV", ...): SAT's RFC list does not carry it since CFDI 4.0.
- Postal code (DomicilioFiscalReceptor): in SAT's c_CodigoPostal; with a generic RFC it must be the store's
  (LugarExpedicion).
- Régimen: valid for the person type; uso CFDI: allowed for that régimen and person type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import List, Optional

from comanda.services.cfdi.catalogs import (
    GENERIC,
    GENERIC_FOREIGN,
    GENERIC_NATIONAL,
    MORAL,
    PUBLIC_IN_GENERAL,
    person_type,
    postal_code_exists,
    regime_allowed,
    regimes,
    use_allowed,
    uses,
)
from comanda.services.cfdi.problems import Problem

RFC_PATTERN = re.compile(r"^([A-ZÑ&]{3,4})([0-9]{6})([A-Z0-9]{2}[0-9A])$")
CHECK_DIGIT_ALPHABET = "0123456789ABCDEFGHIJKLMN&OPQRSTUVWXYZ Ñ"
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
NAME_MAX_LENGTH = 300

# Capital regimes a company writes after its name, longest first. Single letters are abbreviations, matched
# with or without dots and spaces ("S.A. de C.V.", "SA DE CV", "s a de c v").
CAPITAL_REGIMES = [
    "S A P I DE C V",
    "S A B DE C V",
    "S A S DE C V",
    "S DE R L DE C V",
    "S C DE R L DE C V",
    "S A DE C V",
    "S P R DE R L",
    "S P R DE R I",
    "S C DE R L",
    "S C DE C V",
    "S DE R L",
    "S EN C POR A",
    "S EN N C",
    "S EN C",
    "S A P I",
    "S A B",
    "S A S",
    "S A",
    "S C",
    "A C",
    "I A P",
]


def _capital_regime_pattern(regime: str) -> re.Pattern[str]:
    tokens = [re.escape(token) + (r"\.?" if len(token) == 1 else "") for token in regime.split()]
    return re.compile(r"[\s,]+" + r"[\s.]*".join(tokens) + r"[\s.]*$", re.IGNORECASE)


CAPITAL_REGIME_PATTERNS = [_capital_regime_pattern(regime) for regime in CAPITAL_REGIMES]


@dataclass(frozen=True)
class FiscalData:
    """What a CFDI 4.0 needs to know about its receiver."""

    rfc: str
    name: str
    postal_code: str
    regime: str
    use: str
    email: Optional[str] = None

    def normalized(self) -> FiscalData:
        """As SAT expects it: RFC and name upper case without stray spaces or dashes, codes trimmed."""
        return replace(
            self,
            rfc=normalize_rfc(self.rfc),
            name=normalize_name(self.name),
            postal_code=self.postal_code.strip(),
            regime=self.regime.strip(),
            use=self.use.strip().upper(),
            email=(self.email or "").strip() or None,
        )


def normalize_rfc(rfc: str) -> str:
    return re.sub(r"[\s-]", "", rfc).upper()


def normalize_name(name: str) -> str:
    return " ".join(name.split()).upper()


def rfc_check_digit(rfc: str) -> str:
    """SAT's modulo-11 check digit over the first 11 (company) or 12 (person) characters."""
    body = rfc[:-1].rjust(12)
    total = sum(CHECK_DIGIT_ALPHABET.index(ch) * (13 - i) for i, ch in enumerate(body))
    digit = 11 - total % 11
    return "0" if digit == 11 else "A" if digit == 10 else str(digit)


def _valid_rfc_date(digits: str) -> bool:
    year, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    for century in (1900, 2000):  # the RFC does not say which; either real date will do
        try:
            date(century + year, month, day)
            return True
        except ValueError:
            continue
    return False


def check_rfc(rfc: str) -> List[Problem]:
    if rfc in (GENERIC_NATIONAL, GENERIC_FOREIGN):
        return []
    match = RFC_PATTERN.match(rfc)
    if not match or not _valid_rfc_date(match.group(2)):
        return [Problem("rfc", "rfc_format", {"rfc": rfc})]
    if rfc_check_digit(rfc) != rfc[-1]:
        return [Problem("rfc", "rfc_check_digit", {"rfc": rfc})]
    return []


def name_without_capital_regime(name: str) -> str:
    """The name with a trailing capital regime removed ("ACME SA DE CV" → "ACME"); unchanged when none."""
    for pattern in CAPITAL_REGIME_PATTERNS:
        stripped = pattern.sub("", name)
        if stripped != name:
            return stripped.strip(" ,")
    return name


def check_name(name: str, rfc: str) -> List[Problem]:
    if not name:
        return [Problem("name", "name_missing")]
    if len(name) > NAME_MAX_LENGTH or "|" in name:
        return [Problem("name", "name_format")]
    if rfc == GENERIC_NATIONAL and name == PUBLIC_IN_GENERAL:
        return [Problem("name", "name_public_general")]
    if person_type(rfc) == MORAL:
        suggestion = name_without_capital_regime(name)
        if suggestion != name:
            return [Problem("name", "name_capital_regime", {"suggestion": suggestion})]
    return []


def check_postal_code(postal_code: str, rfc: str, expedition_postal_code: str) -> List[Problem]:
    if len(postal_code) != 5 or not postal_code.isdigit():
        return [Problem("postal_code", "postal_code_format", {"postal_code": postal_code})]
    if not postal_code_exists(postal_code):
        return [Problem("postal_code", "postal_code_unknown", {"postal_code": postal_code})]
    if person_type(rfc) == GENERIC and postal_code != expedition_postal_code:
        return [Problem("postal_code", "postal_code_generic", {"expected": expedition_postal_code})]
    return []


def check_regime(regime: str, rfc: str) -> List[Problem]:
    if regime not in regimes():
        return [Problem("regime", "regime_unknown", {"regime": regime})]
    if not regime_allowed(regime, person_type(rfc)):
        return [Problem("regime", "regime_person_type", {"regime": regime})]
    return []


def check_use(use: str, regime: str, rfc: str) -> List[Problem]:
    if use not in uses():
        return [Problem("use", "use_unknown", {"use": use})]
    if not use_allowed(use, regime, person_type(rfc)):
        return [Problem("use", "use_not_allowed", {"use": use, "regime": regime})]
    return []


def check_email(email: Optional[str]) -> List[Problem]:
    if email is None or (EMAIL_PATTERN.match(email) and len(email) <= 254):
        return []
    return [Problem("email", "email_format", {"email": email})]


def check_fiscal_data(data: FiscalData, expedition_postal_code: str) -> List[Problem]:
    """Every field's problems, RFC first (the other checks depend on its person type)."""
    data = data.normalized()
    rfc_problems = check_rfc(data.rfc)
    if rfc_problems:
        return rfc_problems + check_email(data.email)
    regime_problems = check_regime(data.regime, data.rfc)
    return (
        check_name(data.name, data.rfc)
        + check_postal_code(data.postal_code, data.rfc, expedition_postal_code)
        + regime_problems
        + ([] if regime_problems else check_use(data.use, data.regime, data.rfc))
        + check_email(data.email)
    )

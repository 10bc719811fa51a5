"""Why an invoice cannot be issued, in a form the chat can explain and the customer can fix.

Every problem has a stable ``code`` and the ``field`` to ask again (rfc, name, postal_code, regime, use, email,
order, invoice, period), so a rejection from the PAC leads back to the same question as a local check. The
customer reads the Rasa domain's ``utter_cfdi_<code>`` response, in Spanish or English; staff on the command line
read the same sentence (``Problem.text``), or the catalogue's ``cfdi.<code>`` one for the problems only they meet
(credit notes, cancellations, global invoices).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

from comanda.errors import ComandaError
from comanda.i18n import catalogue, response_text, t


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    # dataclasses.field: inside the class body mypy reads `field` as the attribute above
    params: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def message_key(self) -> str:
        return f"cfdi.{self.code}"

    def text(self, language: str) -> str:
        """The explanation outside the chat (the command line, logs): the domain's response the customer reads,
        or the catalogue's sentence for the problems only staff meet."""
        said = response_text(f"utter_cfdi_{self.code}", language, **self.params)
        if said is not None:
            return said
        if self.message_key in catalogue():
            return t(self.message_key, language, **self.params)
        values = ", ".join(f"{name}={value}" for name, value in self.params.items())
        return f"{self.code} ({values})" if values else self.code


class InvoiceRefused(ComandaError):
    """The CFDI cannot be issued as asked. ``code`` is the first problem's; ``problems`` lists them all."""

    code = "invoice_refused"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.text("en") for p in self.problems), problems=self.problems)
        self.code = self.problems[0].code


def refuse(field_name: str, code: str, **params: object) -> InvoiceRefused:
    """One problem, ready to raise: ``raise refuse("order", "order_not_paid")``."""
    return InvoiceRefused([Problem(field_name, code, {k: str(v) for k, v in params.items()})])


class PacUnavailable(ComandaError):
    """The PAC could not be reached or failed on its side; nothing was stamped, trying later may work."""

    code = "pac_unavailable"


class StampUnconfirmed(ComandaError):
    """The PAC may have stamped the CFDI, but Comanda does not have it: the stamping request went out and its
    answer was lost (a read timeout, a dropped connection), or the PAC stamped and the stamped XML could not be
    fetched or did not check out. Trying again would stamp a second CFDI, so the draft keeps its order or
    period (``lifecycle.release_unconfirmed`` frees it once staff have looked at the PAC)."""

    code = "stamp_unconfirmed"

    def __init__(self, message: str, *, uuid: Optional[str] = None, provider_id: Optional[str] = None) -> None:
        super().__init__(message, uuid=uuid, provider_id=provider_id)
        self.uuid, self.provider_id = uuid, provider_id

"""Reading the customer's answers to a form's questions, and telling an answer from something else.

Every form (checkout, invoice) asks for free text: an address, a name, an e-mail, an RFC. What the
customer types is the answer unless it is unmistakably something else: a button of another question,
a clear question, "cancela", an order. That is decided here, in one place, with a rule per kind of
answer (an e-mail looks like an e-mail; an address has a street and a number; a name has no digits),
not by the intent classifier alone: the classifier only has a say when the text does not read as an
answer at all. Readers understand Spanish and English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Optional, Sequence, Tuple

from comanda.enums import Fulfilment, PaymentMethod, StrEnum
from comanda.services.cfdi.fiscal import EMAIL_PATTERN, RFC_PATTERN, normalize_rfc
from comanda.services.products import fold

NAME_MAX_LENGTH = 60
NO_EMAIL = "-"  # the customer wants no e-mail: the slot must still count as answered
NO_REFERENCES = "-"  # nothing to add to a shared location


class AnswerKind(StrEnum):
    """What a form's question asks for; each kind has its reader."""

    FULFILMENT = "fulfilment"
    POSTAL_CODE = "postal_code"
    ADDRESS = "address"
    REFERENCES = "references"  # interior, floor, landmarks: what a shared location does not say
    NAME = "name"
    PAYMENT_METHOD = "payment_method"
    RFC = "rfc"
    FISCAL_NAME = "fiscal_name"
    EMAIL = "email"
    CHOICE = "choice"  # a code from a list (régimen, uso CFDI)


# Kinds where nearly any text could be the answer ("Isabel", "XENON INDUSTRIAL ARTICLES"): only a
# clear question, a command or an order says it is something else.
OPEN_KINDS = frozenset({AnswerKind.REFERENCES, AnswerKind.NAME, AnswerKind.FISCAL_NAME})
# Kinds with a shape of their own: a question mark does not make "ana@x.mx?" something else.
STRUCTURED_KINDS = frozenset({AnswerKind.EMAIL, AnswerKind.RFC, AnswerKind.POSTAL_CODE})

# Intents that are never typed as an answer: they come from the channel (a location, a catalog cart,
# a photo) or from the back office.
NEVER_ANSWERS = frozenset({"share_location", "catalog_order", "received_media", "EXTERNAL_order_update"})


@dataclass(frozen=True)
class Said:
    """What the customer's latest message was, as far as telling an answer from something else goes."""

    text: str
    intent: Optional[str] = None
    order_lines: bool = False  # the catalog reading found products in it

    @property
    def payload(self) -> bool:
        """A button or list tap (Rasa's "/intent{...}" payload), not typed text."""
        return self.text.startswith("/")


def is_answer(kind: AnswerKind, said: Said, elsewhere: FrozenSet[str]) -> bool:
    """Whether ``said`` answers a question of ``kind`` (possibly wrongly: the form then says why and asks
    again), rather than being something else the customer wants now. ``elsewhere`` are the intents the
    form can step aside for (Rasa has a rule for them while the form runs): with any other intent there is
    nowhere else to go, and the form judges the text as an answer."""
    if said.intent in NEVER_ANSWERS:
        return False
    if said.intent not in elsewhere:
        return True
    if said.payload:  # a tapped button of something else
        return False
    if is_question(said.text) and kind not in STRUCTURED_KINDS:
        return False
    if reads_as(kind, said):
        return True
    if is_command(said.text):
        return False
    if kind in OPEN_KINDS:
        return not said.order_lines and not is_small_talk(said.text)
    return False


def stops(kind: AnswerKind, said: Said) -> bool:
    """ "cancela", "ya no", "olvídalo": the customer leaves the form in so many words, whatever the intent
    (an address like "Calle Cancela 5" is still an address)."""
    return _has_any(fold(said.text), _STOPS) and not reads_as(kind, said) and not said.payload


def reads_as(kind: AnswerKind, said: Said) -> bool:
    """The text reads unmistakably as an answer of this kind."""
    text = said.text
    if kind == AnswerKind.FULFILMENT:
        return read_fulfilment(text) is not None
    if kind == AnswerKind.PAYMENT_METHOD:
        return read_payment_method(text) is not None
    if kind == AnswerKind.POSTAL_CODE:  # an address given early is taken too (the form keeps it)
        return read_postal_code(text) is not None or reads_as(AnswerKind.ADDRESS, said)
    if kind == AnswerKind.ADDRESS:
        return read_address(text) is not None and (not said.order_lines or has_street_word(text))
    if kind == AnswerKind.EMAIL:
        return read_email(text) is not None
    if kind == AnswerKind.RFC:
        return bool(RFC_PATTERN.match(normalize_rfc(text)))
    if kind == AnswerKind.CHOICE:
        return bool(_CODE.search(text))
    if kind == AnswerKind.REFERENCES:  # "no", "nada": nothing to add to the pin is an answer too
        return read_references(text) == NO_REFERENCES
    return False


# --- questions, commands, small talk ----------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^(que|cuanto|cuanta|cuando|donde|como|a que hora|hay|tienen|tienes|puedo|"
    r"pueden|se puede|aceptan|hacen|me hacen|what|whats|when|where|how|do you|do y'all|do ya|can i|can you|is there|"
    r"are you|does)\b"
)
_STOPS = (
    "cancela",
    "cancelar",
    "cancelalo",
    "ya no",
    "olvidalo",
    "dejalo",
    "no quiero",
    "mejor no",
    "luego pago",
    "cancel",
    "stop",
    "never mind",
    "forget it",
    "pay later",
)
_COMMANDS = _STOPS + (
    "hablar con alguien",
    "con una persona",
    "con un humano",
    "un agente",
    "talk to someone",
    "a person",
    "a human",
    "an agent",
)
_SMALL_TALK = frozenset(
    {
        "hola",
        "buenas",
        "buenos dias",
        "buenas tardes",
        "buenas noches",
        "gracias",
        "muchas gracias",
        "ok",
        "okay",
        "va",
        "si",
        "no",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank you",
        "yes",
        "yeah",
        "sure",
    }
)


def is_question(text: str) -> bool:
    return "?" in text or "¿" in text or opens_as_question(text)


def opens_as_question(text: str) -> bool:
    """ "can i pay cash?", "aceptan tarjeta": words that open a question, whatever the punctuation."""
    return bool(_QUESTION_START.match(fold(text).strip(" ¿¡")))


def is_command(text: str) -> bool:
    """ "cancela", "ya no", "quiero hablar con alguien": stopping or asking for a person, in so many words."""
    return _has_any(fold(text), _COMMANDS)


def is_small_talk(text: str) -> bool:
    return fold(text).strip(" .,!¡") in _SMALL_TALK


def _has_any(folded: str, words: Iterable[str]) -> bool:
    padded = f" {folded} "
    return any(re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])", padded) for w in words)


# --- checkout ---------------------------------------------------------------------------------------------

_FULFILMENT_WORDS: Dict[str, Tuple[str, ...]] = {
    Fulfilment.DELIVERY: (
        "domicilio",
        "envio",
        "enviar",
        "envien",
        "enviamelo",
        "envialo",
        "manden",
        "mandar",
        "mandamelo",
        "llevar a",
        "lleven",
        "llevamelo",
        "traemelo",
        "traigan",
        "traen",
        "entrega",
        "a mi casa",
        "delivery",
        "deliver",
        "delivered",
        "bring it",
        "send it",
        "ship",
    ),
    Fulfilment.PICKUP: (
        "recoger",
        "recojo",
        "recoge",
        "paso por",
        "pasar por",
        "paso a",
        "voy por",
        "en tienda",
        "sucursal",
        "pick up",
        "pickup",
        "pick it up",
        "collect",
        "come by",
        "in store",
        "paso yo",
        "voy yo",
        "en el local",
        "grab it",
        "swing by",
        "stop by",
        "at the store",
        "at the shop",
    ),
}
_PAYMENT_WORDS: Dict[str, Tuple[str, ...]] = {
    PaymentMethod.OXXO: ("oxxo",),
    PaymentMethod.SPEI: ("spei", "transferencia", "transfer", "deposito", "clabe"),
    PaymentMethod.CARD: (
        "tarjeta",
        "credito",
        "debito",
        "card",
        "credit",
        "debit",
        "visa",
        "mastercard",
        "amex",
        "link",
    ),
    PaymentMethod.CASH: ("efectivo", "cash", "al recoger", "en la tienda", "contra entrega"),
}
_NAME_PREFIXES = re.compile(
    r"^(?:(?:a\s+)?nombre\s+de|es\s+para|para|soy|me\s+llamo|mi\s+nombre\s+es|my\s+name\s+is|name\s+is|"
    r"it'?s\s+for|it'?s|for|i'?m|i\s+am|under)\s+",
    re.IGNORECASE,
)
_POSTAL_CODE = re.compile(r"(?<!\d)(\d{5})(?!\d)")
# Words that only an address has: a street, a unit, a landmark.
_STREET_WORDS = (
    "calle",
    "av",
    "ave",
    "avenida",
    "blvd",
    "boulevard",
    "calzada",
    "calz",
    "callejon",
    "privada",
    "priv",
    "andador",
    "cerrada",
    "circuito",
    "eje",
    "col",
    "colonia",
    "int",
    "interior",
    "depto",
    "dpto",
    "departamento",
    "piso",
    "edificio",
    "edif",
    "torre",
    "mz",
    "manzana",
    "lt",
    "lote",
    "num",
    "numero",
    "entre",
    "esquina",
    "esq",
    "casi",
    "frente",
    "street",
    "st",
    "road",
    "rd",
    "apt",
    "apartment",
    "suite",
    "floor",
    "unit",
    "between",
    "corner",
)
# A street and its number: "Donceles 45", "Calle 5 de Mayo 32", "Madero #25", "Reforma s/n".
_STREET_AND_NUMBER = re.compile(r"[^\W\d_]{3,}\.?\s*(?:#\s*|no\.?\s*|num\.?\s*)?\d{1,5}[a-z]?\b|s/n\b", re.IGNORECASE)
ADDRESS_MIN_LENGTH = 6


def _first_match(text: str, table: Dict[str, Tuple[str, ...]]) -> Optional[str]:
    folded = fold(text)
    for value, words in table.items():
        if _has_any(folded, words):
            return str(value)
    return None


def read_fulfilment(text: str) -> Optional[str]:
    return _first_match(text, _FULFILMENT_WORDS)


def read_payment_method(text: str) -> Optional[str]:
    return _first_match(text, _PAYMENT_WORDS)


def read_postal_code(text: str) -> Optional[str]:
    found = _POSTAL_CODE.search(text or "")
    return found.group(1) if found else None


def read_name(text: str) -> Optional[str]:
    """The name an order goes under, from "a nombre de Ana López" or just "Ana"; None if it is not one."""
    name = " ".join((text or "").split()).strip(" .,!¡¿?")
    name = _NAME_PREFIXES.sub("", name).strip(" .,!¡¿?")
    if not name or len(name) > NAME_MAX_LENGTH or not any(c.isalpha() for c in name) or any(c.isdigit() for c in name):
        return None
    return name


# How only an answer to "¿a nombre de quién?" opens: "a nombre de Maite", "my name is Tom".
_NAMING = re.compile(
    r"^(?:a\s+nombre\s+de|mi\s+nombre\s+es|me\s+llamo|my\s+name\s+is|my\s+name's|under\s+the\s+name)\s+\S",
    re.IGNORECASE,
)


def gives_name(text: str) -> bool:
    """The text is a name given for the order ("a nombre de Maite"), not just any short word."""
    tidy = " ".join((text or "").split()).strip(" .,!¡")
    return bool(_NAMING.match(tidy)) and read_name(tidy) is not None and len(tidy.split()) <= 7


def has_street_word(text: str) -> bool:
    return _has_any(fold(text).replace(".", " "), _STREET_WORDS)


def read_address(text: str) -> Optional[str]:
    """A delivery address as typed, tidied, when it has a street and a number ("Donceles 45 interior 2,
    entre Brasil y Argentina"); None when it does not ("ahí", "en mi casa")."""
    tidy = " ".join((text or "").split()).strip(" .")
    if len(tidy) < ADDRESS_MIN_LENGTH or not _STREET_AND_NUMBER.search(tidy):
        return None
    return tidy


_NOTHING = frozenset({"nada", "ninguna", "ninguno", "sin referencias", "asi esta bien", "nothing", "none", "no thanks"})


def read_references(text: str) -> str:
    """What to add to a shared location ("depto 3, timbre 2"), or NO_REFERENCES for "no"/"nada"."""
    tidy = " ".join((text or "").split()).strip(" .")
    return NO_REFERENCES if is_small_talk(tidy) or fold(tidy) in _NOTHING else tidy


# --- invoices ---------------------------------------------------------------------------------------------

_NO_EMAIL_WORDS = frozenset(
    {"no", "nel", "ninguno", "sin correo", "no tengo", "no gracias", "none", "no thanks", "skip"}
)
_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]?\d{2,3}(?![0-9])")


def read_email(text: str) -> Optional[str]:
    """An e-mail address ("compras@xenon.example.com", also inside a sentence), NO_EMAIL for "no", else None."""
    tidy = " ".join((text or "").split())
    if fold(tidy).strip(" .!") in _NO_EMAIL_WORDS:
        return NO_EMAIL
    for word in tidy.replace(",", " ").replace(";", " ").split():
        word = word.strip("<>()[]\"'.:")
        if EMAIL_PATTERN.match(word) and len(word) <= 254:
            return word
    return None


def read_rfc(text: str) -> Optional[str]:
    """An RFC said inside a sentence ("my RFC is CHLA900415K21"), normalized, else None."""
    for word in re.split(r"[\s,;:]+", text or ""):
        rfc = normalize_rfc(word.strip("<>()[]\"'.!"))
        if RFC_PATTERN.match(rfc):
            return rfc
    return None


def read_fiscal_postal_code(text: str) -> str:
    """The digits of a fiscal postal code as typed; what is left is checked against SAT's catalog."""
    return "".join(re.findall(r"\d", text or "")) or (text or "").strip()


def read_choice(text: str, options: Sequence[Tuple[str, str, str]]) -> Optional[str]:
    """A code picked from a list of (code, title, description): tapped or typed ("612", "g03"), or named by
    its label ("gastos en general") when only one option fits."""
    typed = (text or "").strip()
    codes = {code.upper(): code for code, _, _ in options}
    for word in _CODE.findall(typed):
        if word.upper() in codes:
            return codes[word.upper()]
    wanted = fold(typed)
    found = [
        code
        for code, title, description in options
        if wanted and (wanted in fold(title) or wanted in fold(description))
    ]
    return found[0] if len(found) == 1 else None


# --- taking things out of the cart: never guessed ----------------------------------------------------------

_REMOVAL_WORDS = (
    "quita",
    "quitale",
    "quitame",
    "quitar",
    "quitas",
    "elimina",
    "eliminar",
    "borra",
    "borrar",
    "saca",
    "sacale",
    "ya no quiero",
    "ya no",
    "sin el",
    "sin la",
    "sin los",
    "sin las",
    "cancela",
    "remove",
    "take out",
    "take off",
    "take away",
    "delete",
    "drop",
    "no more",
    "don't want",
    "dont want",
    "get rid",
)
_ADDITION_WORDS = (
    "agrega",
    "agregame",
    "agregale",
    "añade",
    "anade",
    "ponme",
    "pon",
    "otro",
    "otra",
    "otros",
    "otras",
    "mas",
    "tercer",
    "tercero",
    "segundo",
    "add",
    "another",
    "one more",
    "extra",
    "also",
    "plus",
)
_ORDINAL = re.compile(r"\b\d+\s*(?:st|nd|rd|th|º|°|o|a|er|ra)\b", re.IGNORECASE)
_CLEARING_WORDS = (
    "vacia",
    "vaciar",
    "vacialo",
    "borra todo",
    "quita todo",
    "elimina todo",
    "cancela todo",
    "todo el carrito",
    "de nuevo",
    "desde cero",
    "empty",
    "clear",
    "everything",
    "start over",
    "start again",
    "whole cart",
)


def reads_removal(text: str) -> bool:
    """The words ask to take something out ("quita la coca", "remove the latte"), and do not also ask to
    add ("otro latte", "a 3rd latte"): only then is something removed without asking."""
    folded = fold(text)
    return _has_any(folded, _REMOVAL_WORDS) and not reads_addition(text)


def reads_addition(text: str) -> bool:
    return _has_any(fold(text), _ADDITION_WORDS) or bool(_ORDINAL.search(text))


def reads_clearing(text: str) -> bool:
    """The words ask to empty the whole cart ("vacía mi carrito", "start over")."""
    return _has_any(fold(text), _CLEARING_WORDS)

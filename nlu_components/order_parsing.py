"""Reads order lines out of free text against the catalog: "me das 3 de pastor y una coca porfa".

Pure (no Rasa, no database), so it is tested and benchmarked on its own. ``OrderParser(snapshot)``
turns, once per catalog version, every product name and synonym, modifier option and variant label
into a tuple of normalized words (lower case, no accents, a plural "s"/"es" folded into its
singular when the catalog knows it; "sin"/"no"/"without" and "con"/"with" opening an option name
read alike). ``parse(text)`` then:

1. splits the text into words with their character offsets;
2. maps each word to a catalog word: exactly, as a plural of one, or by edit distance (rapidfuzz's
   OSA, same first letter): two letters swapped ("taor"), or from six letters one edit (two from
   eight) with the same last letter too ("horchta", "capuccino"), or the silent Spanish "h" left
   out ("orchata"); never for spaCy's stop words;
3. finds catalog phrases over those words, longest first, without overlaps ("taco al pastor" beats
   "pastor", "café en grano" beats "café"); the shop's own name is a phrase that orders nothing;
4. reads quantities from the words left over: digits, number words (text2num, Spanish and
   English) and a small table ("una docena" 12, "media docena" 6, "un par" 2, "a" 1);
5. cuts the text into clauses at "y", "and", commas and the like; in each clause every product
   takes its own quantity (the one before it, or the one after it when the clause reads "coca
   x2") and the modifiers and variant options next to it that the product allows. A clause that
   names no product speaks of the item before it ("..., half sugar", "..., 3 porfa", "... y una
   negra mediana"). A clause that asks ("¿tienen matcha?", "do you have matcha?", "el matcha
   lleva azúcar?") mentions products but orders nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple, Union

from rapidfuzz.distance import OSA
from spacy.lang.en.stop_words import STOP_WORDS as EN_STOP_WORDS
from spacy.lang.es.stop_words import STOP_WORDS as ES_STOP_WORDS
from text_to_num import text2num

from comanda.services.catalog_snapshot import CatalogSnapshot, ProductSnapshot


def fold(text: str) -> str:
    """Lower case without accents: "Café" and "cafe", "PIÑA" and "pina" read the same."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


_TOKEN = re.compile(r"\d+|[^\W\d_]+(?:['’][^\W\d_]+)*|[%,;.!?+&\n]")
_MEASURE = re.compile(r"\([^)]*\)|\b\d+(?:[.,]\d+)?\s*(?:ml|l|lt|g|gr|kg|oz|pz)\b", re.IGNORECASE)

PUNCTUATION = frozenset({",", ";", ".", "!", "?", "+", "&", "\n"})
SEPARATORS = PUNCTUATION | {"y", "and", "plus", "tambien", "also"}
# Words for one; they also open catalog phrases ("un café", "una coca"), where they are read apart.
ONE = frozenset({"un", "una", "uno", "a", "an", "one", "otro", "otra", "another"})
QUANTITY_PHRASES: Dict[Tuple[str, ...], int] = {
    **{(word,): 1 for word in ONE},
    ("un", "par"): 2,
    ("par",): 2,
    ("a", "couple"): 2,
    ("couple",): 2,
    ("a", "pair"): 2,
    ("una", "docena"): 12,
    ("docena",): 12,
    ("a", "dozen"): 12,
    ("dozen",): 12,
    ("media", "docena"): 6,
    ("half", "a", "dozen"): 6,
    ("half", "dozen"): 6,
}
DOZEN = frozenset({"docena", "docenas", "dozen", "dozens"})
# "unos tacos" is some tacos, not one (text2num reads "unos" as 1): the count may come later.
SOME = frozenset({"unos", "unas"})
# A number followed by one of these is a measure, a price or a time, not how many: "500 ml", "a las 3 pm".
NOT_A_COUNT = frozenset(
    {
        "%",
        "ml",
        "l",
        "lt",
        "litro",
        "litros",
        "g",
        "gr",
        "kg",
        "kilo",
        "kilos",
        "oz",
        "pm",
        "am",
        "hrs",
        "pesos",
        "mxn",
        "min",
        "minutos",
    }
)
MAX_QUANTITY = 999
# Words that make a clause a question about products rather than an order. A clause ending in "?"
# whose products have no quantity asks too ("el matcha lleva azúcar?"); "¿me das una coca?" orders.
QUESTION_WORDS: FrozenSet[Tuple[str, ...]] = frozenset(
    {
        ("tienen",),
        ("tienes",),
        ("tiene",),
        ("hay",),
        ("venden",),
        ("manejan",),
        ("cuanto",),
        ("cuanta",),
        ("cuantos",),
        ("cuantas",),
        ("precio",),
        ("donde",),
        ("do", "you"),
        ("have", "you"),
        ("is", "there"),
        ("are", "there"),
        ("any",),
        ("how", "much"),
        ("how", "many"),
        ("what",),
        ("what's",),
        ("where",),
        ("where's",),
    }
)
# Option names start with "sin"/"con" or "no"/"with" in one language; customers mix them ("with no pearls").
OPENING_SYNONYMS = ({"sin", "no", "without"}, {"con", "with"})
# Words customers put before a variant value: "talla M", "size XL", "color negro".
AXIS_WORDS = {"size": ("talla", "size"), "color": ("color", "colour")}
STOP_WORDS = frozenset(fold(w) for w in ES_STOP_WORDS | EN_STOP_WORDS)
MIN_FUZZY_LENGTH = 4


@dataclass(frozen=True)
class Word:
    key: str  # folded text
    start: int
    end: int


def words(text: str) -> List[Word]:
    """Words, numbers, "%" and clause punctuation, with their offsets in ``text``.

    A regex rather than spaCy's blank tokenizer: that one keeps "pastor,2", "milk+1" and
    "suadero;sin" as single tokens, which would have to be split again anyway.
    """
    return [Word(fold(m.group()).replace("’", "'"), m.start(), m.end()) for m in _TOKEN.finditer(text)]


@dataclass(frozen=True)
class Mention:
    """Where the text names a product (the words of its name, not the quantity or modifiers)."""

    sku: str
    start: int
    end: int


@dataclass
class OrderLine:
    sku: str
    quantity: int
    modifiers: Dict[str, str]  # group → option code: {"size": "large", "sugar": "50"}
    variant: Dict[str, str]  # axis → option id: {"size": "M", "color": "negro"}
    variant_sku: Optional[str]  # set when every axis of the product is given
    quantity_stated: bool  # the customer said how many ("quita la coca" removes all, "quita una coca" one)
    start: int  # the item's words: quantity, product, modifiers and variant options
    end: int

    def as_dict(self) -> Dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "modifiers": self.modifiers,
            "variant": self.variant,
            "variant_sku": self.variant_sku,
            "quantity_stated": self.quantity_stated,
        }


@dataclass
class ParsedMessage:
    lines: List[OrderLine]
    mentions: List[Mention]


@dataclass(frozen=True)
class _ProductTarget:
    product: int  # index in OrderParser.products


@dataclass(frozen=True)
class _ModifierTarget:
    group: str
    code: str


@dataclass(frozen=True)
class _VariantTarget:
    product: int
    axis: str
    option: str


@dataclass(frozen=True)
class _ShopTarget:
    """The shop's own name: read so that its words ("Café Esquina") are not taken for products."""


_Target = Union[_ProductTarget, _ModifierTarget, _VariantTarget, _ShopTarget]


@dataclass
class _Item:
    product: int
    name_start: int  # the product's name words
    name_end: int
    start: int = field(init=False)  # the whole item: grows over its quantity and options
    end: int = field(init=False)
    quantity: Optional[int] = None
    modifiers: Dict[str, str] = field(default_factory=dict)
    variant: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start, self.end = self.name_start, self.name_end

    def cover(self, start: int, end: int) -> None:
        self.start, self.end = min(self.start, start), max(self.end, end)


@dataclass(frozen=True)
class _Quantity:
    value: int
    start: int
    end: int
    article: bool  # "a", "una": counts only what follows ("is the coke a glass bottle?" counts no coke)


@dataclass(frozen=True)
class _Options:
    targets: Tuple[_Target, ...]
    start: int
    end: int


@dataclass
class _Clause:
    elements: List[Union[_Item, _Quantity, _Options]] = field(default_factory=list)
    other_words: List[str] = field(default_factory=list)  # outside catalog phrases and quantities
    question_mark: bool = False  # the clause ends with "?"

    @property
    def items(self) -> List[_Item]:
        return [e for e in self.elements if isinstance(e, _Item)]

    @property
    def options(self) -> List[_Options]:
        return [e for e in self.elements if isinstance(e, _Options)]

    @property
    def asks(self) -> bool:
        """Whether the clause asks about its products instead of ordering them (quantities bound)."""
        keys = self.other_words
        if any(tuple(keys[i : i + n]) in QUESTION_WORDS for i in range(len(keys)) for n in (1, 2)):
            return True
        return self.question_mark and all(item.quantity is None for item in self.items)


@lru_cache(maxsize=4096)
def _number(phrase: str) -> Optional[int]:
    """A number in words, Spanish or English: "tres", "veintiuno", "twenty one"."""
    for language in ("es", "en"):
        try:
            return text2num(phrase, language)
        except ValueError:
            continue
    return None


class _Vocabulary:
    """Every word of every catalog phrase, and which of them a message word stands for."""

    def __init__(self, vocabulary: Set[str]) -> None:
        # Words and their plurals ("-s", "-es") point to one lemma, the shortest word of the forms
        # they share: "tacos" → "taco", "panes" → "pan", and "tamales" is "tamal" and "tamale" alike.
        self.forms: Dict[str, str] = {}
        for word in sorted(vocabulary, key=lambda w: (len(w), w)):
            forms = (word, word + "s", word + "es") if len(word) >= 3 else (word,)
            lemma = next((self.forms[f] for f in forms if f in self.forms), word)
            for form in forms:
                self.forms.setdefault(form, lemma)
        self.by_initial: Dict[str, List[str]] = {}
        for word in sorted(vocabulary):
            if word.isalpha() and len(word) >= 3:
                self.by_initial.setdefault(word[0], []).append(word)
        self._cache: Dict[str, Optional[Tuple[str, bool]]] = {}

    def lookup(self, key: str) -> Optional[Tuple[str, bool]]:
        """(catalog lemma, found by edit distance) for a message word, or None."""
        if key not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: str) -> Optional[Tuple[str, bool]]:
        if key in self.forms:
            return self.forms[key], False
        if len(key) < MIN_FUZZY_LENGTH or not key.isalpha() or key in STOP_WORDS:
            return None
        if "h" + key in self.forms:  # Spanish "h" is silent and often left out: "orchata"
            return self.forms["h" + key], True
        for candidate in (key, key[:-1]) if key.endswith("s") else (key,):
            found = self._closest(candidate)
            if found:
                return self.forms[found], True
        return None

    def _closest(self, key: str) -> Optional[str]:
        """The nearest catalog word with the same first letter: two letters swapped at any length;
        from six letters also one other edit (two from eight) when the last letters agree too, so
        "taor", "horchta" and "capuccino" are read but "queda", "while" or "player" are not."""
        limit = 1 if len(key) < 8 else 2
        best: Optional[Tuple[int, str]] = None
        for choice in self.by_initial.get(key[0], ()):
            distance = OSA.distance(key, choice, score_cutoff=limit)
            swapped = distance == 1 and sorted(choice) == sorted(key)
            close = distance <= limit and len(key) >= 6 and choice[-1] == key[-1]
            if (swapped or close) and (best is None or distance < best[0]):
                best = (distance, choice)
        return best[1] if best else None


class OrderParser:
    """The catalog as phrases of normalized words, built once per catalog version."""

    def __init__(self, catalog: CatalogSnapshot) -> None:
        self.products = catalog.products
        self.allowed_groups = [{g.id for g in p.modifier_groups} for p in self.products]
        self.variant_skus = [{frozenset(v.attributes.items()): v.sku for v in p.variants} for p in self.products]
        phrases: Dict[Tuple[str, ...], List[_Target]] = {}
        for name in catalog.shop_names:
            _add(phrases, name, _ShopTarget())
        for index, product in enumerate(self.products):
            for name in _product_names(product):
                _add(phrases, name, _ProductTarget(index), product=True)
            for axis, options in product.variant_axes.items():
                for option in options:
                    for label in {option.es, option.en, *option.synonyms}:
                        target = _VariantTarget(index, axis, option.id)
                        _add(phrases, label, target)
                        for axis_word in AXIS_WORDS.get(axis, ()):
                            _add(phrases, f"{axis_word} {label}", target)
        for group in {g.id: g for p in self.products for g in p.modifier_groups}.values():
            for option in group.options:
                for label in {option.name_es, option.name_en, *option.synonyms}:
                    _add(phrases, label, _ModifierTarget(group.id, option.code))
        self.vocabulary = _Vocabulary({word for phrase in phrases for word in phrase})
        self.phrases: Dict[Tuple[str, ...], List[_Target]] = {}
        for phrase, targets in phrases.items():
            merged = self.phrases.setdefault(tuple(self.vocabulary.forms[w] for w in phrase), [])
            merged.extend(t for t in targets if t not in merged)
        self.longest = max((len(p) for p in self.phrases), default=0)

    def parse(self, text: str) -> ParsedMessage:
        clauses = self._clauses(words(text))
        mentions = [
            Mention(self.products[i.product].sku, i.name_start, i.name_end) for clause in clauses for i in clause.items
        ]
        ordered: List[_Item] = []
        for clause in clauses:
            _bind_quantities(clause)
            if clause.asks:
                continue
            if clause.items or not ordered:
                for options in clause.options:
                    self._attach(options, clause.items)
                ordered.extend(clause.items)
            else:
                ordered.extend(self._follow_up(clause, ordered[-1]))
        return ParsedMessage([self._line(item) for item in ordered], mentions)

    def _follow_up(self, clause: _Clause, previous: _Item) -> List[_Item]:
        """A clause without a product speaks of the item before it: "..., half sugar" completes it,
        "..., 3 porfa" counts it, and "... y una negra mediana" is one more of the same product when
        the item before has those options already. Returns the new item, if any."""
        quantities = [e for e in clause.elements if isinstance(e, _Quantity)]
        if quantities and clause.options and any(self._slot(o, previous) is None for o in clause.options):
            item = _Item(previous.product, quantities[0].start, quantities[0].end, quantity=quantities[0].value)
            for options in clause.options:
                self._attach(options, [item])
            return [item]
        if quantities and len(clause.elements) == 1 and previous.quantity is None:  # just a count
            previous.quantity = quantities[0].value
            previous.cover(quantities[0].start, quantities[0].end)
        for options in clause.options:
            self._attach(options, [previous])
        return []

    def _clauses(self, tokens: List[Word]) -> List[_Clause]:
        """The text as clauses of products, quantities and options, in reading order."""
        matches = self._matches([self.vocabulary.lookup(t.key) for t in tokens])
        clauses = [_Clause()]
        i = 0
        while i < len(tokens):
            if i in matches:
                end, targets = matches[i]
                start_char, end_char = tokens[i].start, tokens[end - 1].end
                product = next((t for t in targets if isinstance(t, _ProductTarget)), None)
                options = tuple(t for t in targets if isinstance(t, (_ModifierTarget, _VariantTarget)))
                if product:
                    clauses[-1].elements.append(_Item(product.product, start_char, end_char))
                elif options:
                    clauses[-1].elements.append(_Options(options, start_char, end_char))
                i = end
            elif tokens[i].key in SEPARATORS:
                clauses[-1].question_mark = tokens[i].key == "?"
                clauses.append(_Clause())
                i += 1
            else:
                quantity, after = _quantity(tokens, i, matches)
                if quantity:
                    clauses[-1].elements.append(quantity)
                else:
                    clauses[-1].other_words.extend(t.key for t in tokens[i:after])
                i = after
        return [c for c in clauses if c.elements]

    def _matches(self, found: Sequence[Optional[Tuple[str, bool]]]) -> Dict[int, Tuple[int, List[_Target]]]:
        """Catalog phrases in the text by first word index: longest first, then fewest fuzzy words,
        then leftmost; a word belongs to one phrase at most."""
        candidates = []
        for start in range(len(found)):
            for end in range(start + 1, min(start + self.longest, len(found)) + 1):
                if found[end - 1] is None:
                    break
                targets = self.phrases.get(tuple(f[0] for f in found[start:end]))
                if targets:
                    fuzzy = sum(f[1] for f in found[start:end])
                    candidates.append((start - end, fuzzy, start, end, targets))
        taken = [False] * len(found)
        chosen: Dict[int, Tuple[int, List[_Target]]] = {}
        for _, _, start, end, targets in sorted(candidates, key=lambda c: c[:3]):
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                chosen[start] = (end, targets)
        return chosen

    def _attach(self, options: _Options, items: List[_Item]) -> None:
        """Give the options to the nearest item before them that takes them, else the nearest after."""
        before = [i for i in reversed(items) if i.name_start < options.start]
        after = [i for i in items if i.name_start >= options.start]
        for item in before + after:
            slot = self._slot(options, item)
            if slot:
                chosen, key, value = slot
                chosen[key] = value
                item.cover(options.start, options.end)
                return

    def _slot(self, options: _Options, item: _Item) -> Optional[Tuple[Dict[str, str], str, str]]:
        """Where on the item the options go (its modifiers or variant, under which key), if the
        product takes them and that choice is still open."""
        for target in options.targets:
            if isinstance(target, _ModifierTarget):
                chosen = item.modifiers if target.group in self.allowed_groups[item.product] else None
                key, value = target.group, target.code
            else:
                chosen = item.variant if target.product == item.product else None
                key, value = target.axis, target.option
            if chosen is not None and key not in chosen:
                return chosen, key, value
        return None

    def _line(self, item: _Item) -> OrderLine:
        product = self.products[item.product]
        complete = bool(product.variant_axes) and set(item.variant) == set(product.variant_axes)
        variant_sku = self.variant_skus[item.product].get(frozenset(item.variant.items())) if complete else None
        return OrderLine(
            product.sku,
            item.quantity or 1,
            item.modifiers,
            item.variant,
            variant_sku,
            item.quantity is not None,
            item.start,
            item.end,
        )


def _product_names(product: ProductSnapshot) -> Set[str]:
    """Names as written and without their measure ("Agua de horchata (500 ml)" → "Agua de horchata")."""
    names = {product.name_es, product.name_en, *product.synonyms}
    return names | {_MEASURE.sub(" ", name) for name in names}


def _add(phrases: Dict[Tuple[str, ...], List[_Target]], text: str, target: _Target, product: bool = False) -> None:
    keys = [w.key for w in words(text) if w.key not in PUNCTUATION]
    if product:
        while len(keys) > 1 and keys[0] in ONE:
            keys = keys[1:]  # "un café" is read as a quantity and "café"
        if not any(k.isalpha() and len(k) >= 3 and k not in STOP_WORDS for k in keys):
            return  # a product needs a real word, never only "de", "con" or "un"
    if not keys:
        return
    for opening in next((group for group in OPENING_SYNONYMS if keys[0] in group), {keys[0]}):
        phrase = (opening, *keys[1:])
        if target not in phrases.setdefault(phrase, []):
            phrases[phrase].append(target)


def _quantity(tokens: List[Word], i: int, matches: Mapping[int, Any]) -> Tuple[Optional[_Quantity], int]:
    """The quantity that starts at word ``i``, if any, and the index after the words read."""
    value, end = None, i
    for n in (3, 2, 1):
        keys = tuple(w.key for w in tokens[i : i + n])
        if len(keys) < n or any(k in matches for k in range(i, i + n)):
            continue
        if keys in QUANTITY_PHRASES:
            value = QUANTITY_PHRASES[keys]
        elif n == 1 and keys[0].isdigit():
            value = int(keys[0])
        elif all(k.isalpha() and k not in SOME and _number(k) is not None for k in keys):
            value = _number(" ".join(keys))
        if value is not None:
            end = i + n
            break
    if value is None:
        return None, i + 1
    if end < len(tokens) and end not in matches and tokens[end].key in DOZEN:
        value, end = value * 12, end + 1
    if end < len(tokens) and tokens[end].key in NOT_A_COUNT:
        return None, end + 1
    if not 1 <= value <= MAX_QUANTITY:
        return None, end
    article = end == i + 1 and tokens[i].key in ONE
    return _Quantity(value, tokens[i].start, tokens[end - 1].end, article), end


def _bind_quantities(clause: _Clause) -> None:
    """Each product takes the quantity just before it; in "coca x2" or "pastor 3" the one after it."""
    counted = [e for e in clause.elements if isinstance(e, (_Item, _Quantity))]
    postfix = (
        bool(counted)
        and isinstance(counted[0], _Item)
        and isinstance(counted[-1], _Quantity)
        and not counted[-1].article
    )
    pending: Optional[_Quantity] = None
    last: Optional[_Item] = None
    for element in counted:
        if isinstance(element, _Quantity):
            if not postfix or element.article:
                pending = element
            elif last and last.quantity is None:
                last.quantity = element.value
                last.cover(element.start, element.end)
        else:
            if pending:
                element.quantity = pending.value
                element.cover(pending.start, pending.end)
                pending = None
            last = element

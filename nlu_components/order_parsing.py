"""Reads order lines out of free text against the catalog: "me das 3 de pastor y una coca porfa".

Pure (no Rasa, no database), so it is tested and benchmarked on its own. ``OrderParser(snapshot)``
turns, once per catalog version, every product name and synonym, modifier option, variant label and
category name into a tuple of normalized words (lower case, no accents, a plural "s"/"es" folded
into its singular when the catalog knows it; "sin"/"no"/"without" and "con"/"with" opening an option
name read alike). ``parse(text)`` then:

1. splits the text (at most ``max_chars`` of it) into words with their character offsets, reading
   chat shorthand ("d" de, "pa" para, "c/" con, "w/" with, "c/u" cada uno, "1/2" media) and "docena"
   spelt by ear ("dozena");
2. maps each word to a catalog word, in three tiers: exactly or as a plural (tier 0); a misspelling
   that is safe anywhere (tier 1: two letters swapped, "taor"; one edit from six letters, two from
   eight, with first and last letters kept, "horchta"; the silent "h" left out, "orchata"; the same
   sound in Mexican Spanish spelling from five letters, "tacoz", "kesadiyas", chat's "x" for "ch",
   "orxata", or in English spelling, "chilakeelays", "tie tea"; a diminutive, "taquitos", "aguita"); or
   a looser likeness by sound or one letter (tier 2: "pastr", "late", "suger", "tai"), which counts
   only with context: inside a catalog phrase with another word read exactly ("matcha late", "té
   tai"), right after a quantity ("2 d pastr"), after an article at the end of a clause when four
   letters sound exactly like it ("y una koka") or right before an option ("un tai grande"). Spanish
   and English stop words and common foods a shop may not sell ("chelas", "tamales") are never
   misspellings;
3. finds catalog phrases over those words, longest first, then fewest misspelt words, then leftmost,
   without overlaps ("taco al pastor" beats "pastor"), also where words that sound like a product's
   name run together are split or joined otherwise ("chila quiles", "brownsugar", "thai tee": a "tee"
   is a T-shirt only on its own); the shop's own name orders nothing;
4. reads quantities: digits, number words (text2num, or spelt by ear: "sinco"), "una docena", "media
   docena", "docena y media", "un par", "a";
   ordinals and "otro/another/one more" count one and say the customer adds ("a 3rd latte");
   "for"/"to"/"too" between an order verb and a product are four and two as a dictation writes them
   ("can I get for campechano tacos");
   "somos cuatro" / "for 4 people" / "para los 5" / "six of us" / "a group of six" is the size of the
   group, not a count, said before or after what each one has ("una quesadilla por cabeza, somos 4");
5. cuts the text into clauses at "y", "and", commas, colons and the like; in each clause every
   product takes its own quantity (the one before it, or after it in "coca x2") and the modifiers
   and variant options next to it that the product allows (several from a group that takes several:
   "sin cebolla y con piña"). A clause without a product speaks of the item before it: it completes
   it ("..., half sugar"), counts it ("..., 3 porfa"), splits it ("tres taros: dos con leche de
   avena y uno sin nada" is three taros; "half of them without boba", "una para mí y otra pa mi
   hermana", "tres conchas, dos de vainilla" too), adds one more ("y otro con almendra", "y otro igual
   pero chico", whose "chico" replaces the copied size; "2 sin cebolla y 2 sin cilantro", the whole
   count again with other options; "3 with pineapple, 3 without"; "y una natural", a name its first
   word begins), or corrects it ("2 cocas, no, mejor 4", "make it two", "sorry I meant 2"); a
   correction that counts again products ordered before it replaces them ("3 de pastor y 2 de
   suadero... no, al revés: 2 de pastor y 3 de suadero"). A product named again with "el/los/the"
   and no count only adds options to the earlier item ("4 de pastor y 2 campechanos, los de pastor
   con piña"). "uno de cada sabor" (or "uno de cada agua", "one of every kind of taco") orders one of
   each product of the category named; "somos cuatro, una torta pa cada uno" four.
   "2 tacos de cada uno: pastor y suadero" (or "two of each: pastor, suadero") two of each kind
   listed; "dos aguas, una de horchata y una de jamaica" is the two aguas itemised ("tres cafés, dos
   americanos y un latte" too). Lines of the same thing with the same options add up, as in the cart
   ("una quesadilla para mí y otra para mi hijo" is two).
   A clause that asks ("¿tienen matcha?", "do you have matcha?") mentions products but orders none;
   a count right after a question about one product orders it ("¿tienen campechanos? ponme 4");
6. keeps what it cannot place: words after an item that the kitchen can act on but no option says
   ("bien fría", "sin hielo", an option the product does not have) become the line's ``note``; a
   word in a product's place that the catalog does not know ("2 pozoles", "¿tienen pozole?",
   "pastr" without context) becomes an ``Unplaced`` with the products it may mean. Nothing the
   customer asked for is dropped without a trace;
7. reads at most ``max_lines`` order lines and says so (``truncated``) when there were more.

It also reports cues for the intent: whether the message says to add (ordinals, "otro", "one more",
"agrega") or to remove ("quita", "borra", "remove", "ya no quiero"), so that a removal is never
guessed from a message without a removal verb.
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


_TOKEN = re.compile(
    r"\b[csw]/(?:u\b)?|\b1/2\b|\d+|[^\W\d_]+(?:['’][^\W\d_]+)*|[%,;:.!?+&()\n/•|…¿¡]|(?<=\s)[-–—](?=\s)", re.IGNORECASE
)
_MEASURE = re.compile(r"\([^)]*\)|\b\d+(?:[.,]\d+)?\s*(?:ml|l|lt|g|gr|kg|oz|pz)\b", re.IGNORECASE)
# A price quoted from the menu ("Café latte $55 x2", "$80.00") is not a count.
_PRICE = re.compile(r"\$\s?\d+(?:[.,]\d{1,2})?")
# A time of day ("a las 7:30", "at 4pm") is not a count either.
_TIME = re.compile(r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.|hrs)(?!\w)", re.IGNORECASE)
# "(2) tortas": a count in brackets, as list-makers write it, is the bare count.
_BRACKETED_COUNT = re.compile(r"\((\d{1,3})\)")
# Food and drink pictographs; a run of one of them before the product counts it ("🌮🌮🌮 de pastor").
_FOOD_EMOJI = "\U0001f32d-\U0001f37f\U0001f950-\U0001f96f\U0001f9c0-\U0001f9cb\u2615"
_EMOJI_COUNT = re.compile(rf"(?<![\w\d])(([{_FOOD_EMOJI}])\2+)(?=\s*[^\W\d_])")

PHRASE_LENGTHS = (1, 2, 3)  # the words of a cue phrase: "make", "make it", "no le pongas"
MAX_CHARS = 4096  # WhatsApp's longest text message; beyond it nothing is read (and the reading says so)
MAX_LINES = 20  # order lines read from one message; beyond it the reading says so
# Chat shorthand, read as the word it stands for.
SHORTHAND = {
    "d": "de",
    "pa": "para",
    "xa": "para",
    "q": "que",
    "k": "que",
    "1/2": "media",
    "c/": "con",
    "s/": "sin",
    "w/": "with",
    "tb": "tambien",
    "tmb": "tambien",
    "tmbn": "tambien",
}
PUNCTUATION = frozenset(
    {",", ";", ":", ".", "!", "?", "+", "&", "(", ")", "\n", "/", "•", "|", "-", "–", "—", "…", "...", "¿", "¡"}
)
SEPARATORS = PUNCTUATION | {"y", "and", "plus", "tambien", "also", "e", "pero", "but"}
# Words for one; they also open catalog phrases ("un café", "una coca"), where they are read apart.
ONE = frozenset({"un", "una", "uno", "a", "an", "one", "otro", "otra", "another"})
# Indefinite articles count one only before a product ("is the coke a glass bottle?" counts no coke).
ARTICLES = frozenset({"un", "una", "a", "an"})
# One more of something, never a removal: "otro latte", "another one".
ANOTHER = frozenset({"otro", "otra", "otros", "otras", "another"})
MORE = frozenset({"mas", "more"})  # "uno más", "2 more"
# After "otra"/"another"/"one more", a round or a time that is not the count: "otra ronda de cocas, 3
# más" is three more, "otra vez" is again
ROUNDS = frozenset({"ronda", "tanda", "round", "vez", "time"})
ORDINAL_WORDS = frozenset(
    {
        "segundo",
        "segunda",
        "tercer",
        "tercero",
        "tercera",
        "cuarto",
        "cuarta",
        "quinto",
        "quinta",
        "sexto",
        "sexta",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
    }
)
ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th", "er", "ero", "ro", "ra", "do", "da", "to", "ta", "o", "a"})
QUANTITY_PHRASES: Dict[Tuple[str, ...], int] = {
    **{(word,): 1 for word in ONE},
    ("un", "par"): 2,
    ("par", "de"): 2,
    ("pair", "of"): 2,
    ("par",): 2,
    ("a", "couple"): 2,
    ("couple",): 2,
    ("a", "pair"): 2,
    ("una", "docena"): 12,
    ("docena",): 12,
    ("a", "dozen"): 12,
    ("dozen",): 12,
    ("media", "docena"): 6,
    ("media", "dozen"): 6,  # "1/2 dozen"
    ("half", "a", "dozen"): 6,
    ("half", "dozen"): 6,
    ("una", "docena", "y", "media"): 18,
    ("docena", "y", "media"): 18,
    ("a", "dozen", "and", "a", "half"): 18,
    ("dozen", "and", "a", "half"): 18,
}
DOZEN = frozenset({"docena", "docenas", "dozen", "dozens"})
# Counts written as the words they sound like, right between an order verb (or the start, or for "for"
# a list's "and") and a product ("get for tacos", "have to cokes", "and for quesadillas"): how a voice
# dictation or a hurried thumb writes "four" and "two".
HEARD_COUNTS = {"for": 4, "to": 2, "too": 2}
# "unos tacos" is some tacos, not one (text2num reads "unos" as 1): the count may come later; "the
# pastor ones" counts nothing either.
SOME = frozenset({"unos", "unas", "ones"})
# Words that turn part of an item into another product after "pero"/"but": "pero uno mejor que sea latte".
CONVERTING = frozenset({("mejor",), ("sea",), ("make",), ("instead",), ("rather",)})
# Words by which the customer speaks of their own order, apart from the group's.
PERSONAL = frozenset({"yo", "mi", "me", "i", "i'll", "myself", "mine"})
# One other person and the customer: the pair "each" counts in "for my wife and me, a latte each".
WITH_ME = frozenset(
    {("y", "yo"), ("y", "para", "mi"), ("and", "me"), ("and", "i"), ("and", "myself"), ("y", "a", "mi")}
)
# Words between two names of one product that make them one item: "una milanesa en torta".
NAME_JOINERS = frozenset({"en", "de", "in", "on"})
# Words that only agree or hedge, between a question about a product and the count that orders it.
AGREEING = frozenset({"si", "yes", "ok", "okay", "va", "sale", "claro", "pues", "entonces", "so", "if", "then"})
# Number words as they sound, for counts spelt by ear: "sinco", "dies", "onse", "beinte" (from four letters).
SPOKEN_NUMBERS = (
    "cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciseis diecisiete dieciocho"
    " diecinueve veinte treinta cuarenta cincuenta three four five seven eight nine eleven twelve twenty"
).split()
# A number followed by one of these is a measure, a price or a time, not how many: "500 ml", "a las 3 pm".
NOT_A_COUNT = frozenset(
    {"%", "ml", "l", "lt", "litro", "litros", "g", "gr", "kg", "kilo", "kilos", "oz", "pm", "am", "hrs"}
    | {"pesos", "mxn", "min", "mins", "minutos", "minutes", "horas", "hours", "dias", "days", "cp"}
)
# "media docena mitad pastor mitad suadero", "a dozen, half pastor half suadero": half of the count said.
HALF = frozenset({"mitad", "half"})
# The group's size: "somos cuatro", "we are 4", "para 4 personas", "4 of us".
GROUP_BEFORE = frozenset({"somos", "seremos", "we're", "were"})
GROUP_AFTER = frozenset({"personas", "persona", "people", "persons", "comensales"})
# "mis dos hijos quieren una quesadilla cada uno", "for each of my 3 kids": the people are the group
GROUP_AFTER |= {"ninos", "ninas", "hijos", "hijas", "chamacos", "chavos", "amigos", "amigas", "adultos"}
GROUP_AFTER |= {"kids", "boys", "girls", "children", "sons", "daughters", "friends", "guys", "adults"}
GROUP_AFTER |= {"companeros", "companeras", "colegas", "coworkers", "colleagues", "roommates", "primos", "sobrinos"}
# "para los 5", "pa las cuatro", "for the five of us", "there's six of us": the group, said around its size.
GROUP_FOR = frozenset({"para", "for"})
GROUP_THE = frozenset({"los", "las", "the"})
GROUP_NOUNS = frozenset(
    {"group", "grupo", "squad", "team", "crew", "equipo", "bola", "mesa", "table"}
)  # "a group of six", "somos un grupo de 8"
# "half of them without boba", "la mitad de ellos sin cebolla": half of the item before.
THEM = frozenset({"them", "those", "these", "ellos", "ellas", "esos", "esas", "estos", "estas"})
MAX_QUANTITY = 999
# Words that make a clause a question about products rather than an order. A clause ending in "?"
# whose products have no quantity asks too ("el matcha lleva azúcar?"); "¿me das una coca?" orders, and
# so do options alone after an order ("… sin cebolla y con piña?").
QUESTION_WORDS: FrozenSet[Tuple[str, ...]] = frozenset(
    {
        ("tienen",),
        ("tienes",),
        ("tiene",),
        ("hay",),
        ("venden",),
        ("vendes",),
        ("manejan",),
        ("cuanto",),
        ("cuanta",),
        ("a", "como"),  # "¿a cómo dan el termo?": how much
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
        ("whats",),
        ("does",),
        ("is", "the"),
        ("contiene",),
        ("where",),
        ("where's",),
    }
)
# Words that ask what there is: with a category and no product, the menu's part ("what's in the bakery?").
WHAT_WORDS = frozenset({("what",), ("what's",), ("que",), ("which",), ("cuales",)})
# Words that ask to see a part of the menu: "let me see the coffee options", "quiero ver los cafés".
MENU_WORDS: FrozenSet[Tuple[str, ...]] = frozenset(
    (w,)
    for w in (
        "opciones",
        "options",
        "menu",
        "carta",
        "ver",
        "see",
        "show",
        "muestrame",
        "ensename",
        "choices",
        "list",
        "lista",
    )
)
# Words after which a question names what it asks about: "¿tienen pozole?", "do you sell tamales?".
ASKING_FOR = frozenset({"tienen", "tienes", "hay", "venden", "vendes", "manejan", "have", "sell", "any", "got"})
ASKING_FOR |= {"there", "carry", "make", "hacen", "preparan", "teneis", "tenes", "vendeis"}
# A clause that only says this takes back what came before: "2 cocas, no, mejor 4".
# Only some of them also replace a product named before: "una coca, no, mejor una jamaica".
REPLACING = frozenset({"no", "nel", "nop", "perdon", "perdona", "sorry", "digo", "mejor", "mean", "sea", "error"})
REPLACING |= {"scratch", "olvida", "olvidalo"}
TAKE_BACK = REPLACING | {"wait", "espera", "ups", "oops", "actually", "rather", "i", "o", "make", "that"}
TAKE_BACK |= {"oh", "ah", "uh", "uy", "ay", "chin", "hmm", "mm", "bueno", "well", "scratch", "olvida", "olvidalo"}
TAKE_BACK |= {
    "al",
    "reves",
    "corrijo",
    "correccion",
    "correction",
    "esperate",
    "esperame",
    "hold",
    "on",
}  # "no, al revés: ..."
# A clause that starts with one of these corrects the item before: "..., mejor 4", "..., I mean 3".
CORRECTING = frozenset(
    {("mejor",), ("digo",), ("corrijo",), ("i", "mean"), ("actually",), ("make", "that"), ("make", "it")}
    | {("i", "meant"), ("sorry",), ("perdon",), ("wait",), ("espera",), ("quise", "decir")}
)
# A count after these is what the quantity becomes: "cambia las horchatas a una", "down to one", "déjalo en 4".
SET_TO = frozenset({"a", "to", "at", "en"})
# "cada uno", "c/u", "of each", "each", "apiece", "por persona": one per person, or one per kind.
EACH = frozenset({("cada",), ("c/u",), ("each",), ("every",), ("apiece",), ("por", "persona"), ("per", "person")})
EACH |= {("everybody",), ("everyone",), ("por", "cabeza"), ("cada", "quien")}
# Kinds to take one of each: "uno de cada sabor", "one of each flavor".
KINDS = frozenset({"sabor", "sabores", "flavor", "flavors", "flavour", "flavours", "tipo", "tipos", "kind", "kinds"})
KINDS |= frozenset({"variedad", "variedades"})
# Words skipped before an unknown product: "2 de pozole", "quiero unos tlacoyos", "some tamales".
LEADING = frozenset({"de", "of", "el", "la", "los", "las", "the", "some", "un", "una", "unos", "unas"})
MAX_UNPLACED = 5  # product words said back from one message, at most
# A product named again to attach options: "los de pastor con piña", "the tacos with pineapple".
DEFINITE = frozenset({"el", "la", "los", "las", "al", "the", "those", "these", "esos", "esas", "estos", "estas"})
# An answer that keeps an item as it is, in a split: "y uno sin nada", "and one plain".
PLAIN = frozenset({"nada", "normal", "solo", "sencillo", "sencilla", "plain", "nothing", "regular", "natural"})
# Words that open what the kitchen should know about an item ("bien fría", "sin hielo", "extra hot").
NOTE_OPENERS = frozenset(
    {"bien", "muy", "sin", "con", "extra", "poco", "poca", "poquito", "poquita", "mucho", "mucha", "mas", "menos"}
    | {"doble", "light", "tibio", "tibia", "caliente", "frio", "fria", "helado", "helada", "al", "no", "without"}
    | {"with", "less", "more", "double", "hot", "iced", "cold", "warm", "well", "very", "not", "on"}
)
# Words that never make a note or a product: how to pay or get the order, politeness, generic nouns.
NOT_ITEM_WORDS = frozenset(
    {"tarjeta", "efectivo", "transferencia", "card", "cash", "transfer", "oxxo", "spei", "cambio", "change"}
    | {"domicilio", "envio", "delivery", "pickup", "recoger", "llevar", "aqui", "go", "here", "entrega"}
    | {"porfa", "porfis", "porfavor", "favor", "please", "pls", "plis", "plz", "xfa", "gracias", "thanks", "thx"}
    | {"menu", "carta", "opciones", "options", "algo", "something", "anything", "food", "comida", "bebidas"}
    | {"drinks", "cosas", "things", "productos", "products", "wifi", "internet", "estacionamiento", "parking"}
    | {"servicio", "service", "factura", "invoice", "terminal", "promociones", "promos", "descuento", "discount"}
    | {"horario", "hours", "sucursal", "branch", "mesa", "mesas", "table", "tables", "baño", "bano", "bathroom"}
    | {"pedido", "orden", "ordenes", "order", "orders", "carrito", "cart", "cuenta", "total", "ticket", "precio"}
    | {"price", "costo"}
    | {"quiero", "quisiera", "dame", "deme", "damelo", "mandame", "manda", "ponme", "pon", "agrega", "agregame"}
    | {"want", "like", "give", "get", "send", "add", "need", "necesito", "tienen", "venden", "have", "sell"}
    | {"ya", "listo", "todo", "all", "eso", "that", "favor", "amigo", "amiga", "joven", "bro", "wey", "guey"}
    | {"sale", "ok", "okay", "va", "vale", "bueno", "hola", "hi", "hello", "buenas", "buenos", "dias", "tardes"}
    | {"noches", "morning", "afternoon", "evening", "vez", "veces", "time", "times", "minutos", "rato", "day"}
    | {"comer", "tomar", "beber", "desayunar", "almorzar", "cenar", "eat", "drink", "breakfast", "lunch", "dinner"}
    | {"persona", "person", "humano", "human", "bot", "robot", "gerente", "manager", "alguien", "someone"}
    | {"empleado", "employee", "agente", "agent", "instead", "actually", "total", "far", "lugar", "night", "care"}
    | {
        "terraza",
        "terrace",
        "patio",
        "enchufes",
        "outlets",
        "ubicacion",
        "location",
        "perro",
        "perros",
        "perrito",
        "mascota",
        "mascotas",
        "dog",
        "dogs",
        "pet",
        "pets",
        "gato",
        "cat",
        "ones",
        "piezas",
        "pieces",
        "igual",
        "iguales",
        "same",
        "identico",
        "identicos",
        "exactly",
        "exactamente",
        "today",
        "tonight",
        "now",
        "ahorita",
        "anymore",
        "update",
        "status",
        "estado",
    }
)
# Stop words that say what one has or is, not what one orders: "¿cuánto cuesta? tengo 200".
HAVING = frozenset({"tengo", "tenemos", "tiene", "tienen", "traigo", "son", "somos", "es", "have", "has", "had"})
HAVING |= {"is", "are", "am", "was"}
# Verbs that order: an unknown word after "quiero un ..." is a product the catalog lacks, after "thanks a
# ..." it is not.
ORDER_VERBS = frozenset(
    {"quiero", "quisiera", "dame", "deme", "damelo", "das", "da", "mandas", "manda", "mandame", "pones", "ponme"}
    | {"regalas", "regalame", "traes", "trae", "traeme", "agrega", "agregame", "anade", "pido", "encargo", "ocupo"}
    | {"necesito", "antoja", "want", "get", "have", "give", "gimme", "order", "like", "need", "take", "bring"}
)
# Cues for the intent. Removal needs one of these: a word, or two in a row ("ya no quiero", "take off").
REMOVE_CUES: FrozenSet[Tuple[str, ...]] = frozenset(
    {
        (w,)
        for w in (
            "quita",
            "quitale",
            "quitame",
            "quitalo",
            "quitala",
            "quitalos",
            "quitalas",
            "quitar",
            "quite",
            "quiten",
            "quitas",
            "borra",
            "borrale",
            "borrame",
            "borralo",
            "borrala",
            "borrar",
            "borren",
            "elimina",
            "eliminale",
            "eliminar",
            "saca",
            "sacale",
            "sacame",
            "sacar",
            "cancela",
            "cancelar",
            "cancelame",
            "vacia",
            "vaciar",
            "vacialo",
            "olvida",
            "olvidalo",
            "olvidate",
            "remove",
            "delete",
            "drop",
            "cancel",
            "empty",
            "clear",
            "scratch",
            "forget",
            "minus",
            "reset",
            "resetea",
            "resetear",
            "restart",
            "reinicia",
            "reiniciar",
            "wipe",
            "scrap",
            "trash",
            "tira",
            "tirar",
            "ceros",
            "limpia",
            "limpiar",
            "borron",
            "deshazte",
            "sacalo",
            "sacalos",
            "rid",
            "skip",
            "lose",
            "retira",
            "retirar",
            "remueve",
            "remover",
            "descarta",
            "descartar",
            "empezar",
            "empecemos",
            "empezamos",
            "empieza",
            "nevermind",
            "retire",
            "elimine",
            "borre",
            "saque",
            "anymore",
            "zero",
        )
    }
    | {("no", "quiero"), ("ya", "no"), ("take", "off"), ("take", "out"), ("don't", "want"), ("dont", "want")}
    | {("no", "longer"), ("start", "over"), ("de", "cero"), ("never", "mind"), ("don't", "need"), ("dont", "need")}
    | {
        ("desde", "cero"),
        ("no", "va"),
        ("no", "me"),
        ("sin", "la"),
        ("sin", "el"),
        ("sin", "los"),
        ("sin", "las"),
        ("without", "the"),
    }
    # "don't add the taro after all", "no agregues la coca": an add verb said not to
    | {("don't", "add"), ("dont", "add"), ("do", "not", "add"), ("no", "agregues"), ("no", "le", "agregues")}
    | {("no", "pongas"), ("no", "le", "pongas"), ("no", "me", "pongas"), ("no", "sumes")}
)
NOT_ADDING = frozenset(cue for cue in REMOVE_CUES if cue[-1] in ("add", "agregues", "pongas", "sumes"))
# A quantity change says so: "mejor", "que sean", "en vez de", "make it", "instead", "only", "not 3".
CHANGE_CUES: FrozenSet[Tuple[str, ...]] = frozenset(
    {
        (w,)
        for w in (
            "mejor",
            "sean",
            "sea",
            "cambia",
            "cambiale",
            "cambiar",
            "solo",
            "nomas",
            "menos",
            "subele",
            "bajale",
            "reduce",
            "reducir",
            "aumenta",
            "aumentale",
            "ponle",
            "hazlo",
            "hazle",
            "dejalo",
            "dejalos",
            "dejala",
            "dejalas",
            "dejame",
            "deja",
            "corrige",
            "corrigeme",
            "equivoque",
            "eran",
            "change",
            "instead",
            "just",
            "only",
            "actually",
            "bump",
            "less",
            "fewer",
            "reduce",
            "increase",
            "fix",
            "cut",
            "total",
            "update",
            "leave",
            "keep",
            "set",
        )
    }
    | {("en", "vez"), ("en", "lugar"), ("nada", "mas"), ("no", "mas"), ("it's",), ("son",), ("not",), ("up",)}
    | {("down", "to"), ("lower",), ("raise",)}  # "bring the conchas down to 2"
    # "make it 3", "make the taro two"; not "one of each taco you make"
    | {("make", w) for w in ("it", "that", "them", "those", "these", "the", "my", "mine", "this")}
)
ADD_CUES: FrozenSet[Tuple[str, ...]] = frozenset(
    {
        (w,)
        for w in (
            "agrega",
            "agregame",
            "agregale",
            "agregar",
            "agreguen",
            "anade",
            "anademe",
            "anadele",
            "anadir",
            "suma",
            "sumale",
            "add",
            "also",
            "tambien",
            "plus",
        )
    }
    | {(w,) for w in ANOTHER}
    | {("one", "more"), ("uno", "mas"), ("una", "mas")}
)
# Verbs that put something in the cart, even in a question: "any chance you could add a coke?"
ADD_VERBS = frozenset(cue for cue in ADD_CUES if len(cue) == 1 and cue[0] not in ("also", "tambien", "plus"))
ADD_VERBS -= {(w,) for w in ANOTHER}
# Option names start with "sin"/"con" or "no"/"with" in one language; customers mix them ("with no pearls").
OPENING_SYNONYMS = ({"sin", "no", "without"}, {"con", "with"})
# Words customers put before a variant value: "talla M", "size XL", "color negro".
AXIS_WORDS = {"size": ("talla", "size"), "color": ("color", "colour")}
STOP_WORDS = frozenset(fold(w) for w in ES_STOP_WORDS | EN_STOP_WORDS)
# Common food and drink words of Mexican menus that a shop may not sell: never a misspelling of one of
# its products ("2 chelas" are beers, not "chilas"), so the bot says it does not have them.
OTHER_FOODS = frozenset(
    {"chela", "chelas", "cheve", "cheves", "chelita", "chelitas", "beer", "beers", "jugo", "jugos", "juice"}
    | {"juices", "tamal", "tamales", "tamale", "elote", "elotes", "pozole", "sope", "sopes", "torito", "atole"}
)
MIN_FUZZY_LENGTH = 4
# Product names read by their words' sounds run together: from five sounds, safe from seven; at most three words.
MIN_RUN_SOUND = 5
MIN_SAFE_RUN_SOUND = 7
MAX_RUN_WORDS = 3
# Words before an option's own words: "sin boba", "with oat milk", "de avena", "bien dulce".
OPTION_OPENERS = frozenset({"sin", "con", "no", "with", "without", "de", "of", "bien", "muy"})
# Connectors inside names read alike: "café de grano" is "café en grano".
CONNECTORS = ("en", "del")
# Plurals the "-s"/"-es" rule leaves out, of words too short for it: "dos tés de taro".
SHORT_PLURALS = {"tes": "te"}

Modifiers = Dict[str, Union[str, List[str]]]  # group → option code, or codes for a group that takes several


@dataclass(frozen=True)
class Word:
    key: str  # folded text, shorthand spelt out
    start: int
    end: int


def words(text: str) -> List[Word]:
    """Words, numbers, "%" and clause punctuation, with their offsets in ``text``.

    A regex rather than spaCy's blank tokenizer: that one keeps "pastor,2", "milk+1" and
    "suadero;sin" as single tokens, which would have to be split again anyway.
    """
    not_counts = [m.span() for pattern in (_PRICE, _TIME) for m in pattern.finditer(text)]
    text = _BRACKETED_COUNT.sub(lambda m: f" {m.group(1)} ", text)
    text = _EMOJI_COUNT.sub(lambda m: str(len(m.group(1))).ljust(len(m.group(1))), text)
    found = []
    for match in _TOKEN.finditer(text):
        if any(start <= match.start() < end for start, end in not_counts):
            continue
        key = fold(match.group()).replace("’", "'")
        key = SHORTHAND.get(key, key)
        if len(key) >= 5 and key.isalpha():
            key = _DOZEN_SOUNDS.get(sound(key), key)  # "dozena", "dosenas"
        found.append(Word(key, match.start(), match.end()))
    return found


@lru_cache(maxsize=16384)
def sound(word: str) -> str:
    """How a folded word sounds in Mexican Spanish spelling: k/qu/c, s/z/c, ll/y, b/v, silent h, j/h,
    doubled letters, chat's "x" for "ch" before a vowel ("orxata"), and English spellings of vowels ("ee"
    and a final "ea" for i, "ay" for e, "au" for ow, "ie" for ai in a word of three letters: "tie", "tea").
    "tacoz" and "tacos", "kesadiyas" and "quesadillas", "late" and "latte", "chilakeelays" and
    "chilaquiles" sound alike."""
    w = re.sub(r"ay(?![aeiou])", "e", word.replace("ee", "i").replace("oo", "u").replace("au", "ow"))
    w = re.sub(r"ea$", "i", re.sub(r"^(.)ie$", r"\1ai", w))
    w = re.sub(r"(.)\1+", r"\1", w)
    w = re.sub(r"(?<=.)x(?=[aeiou])", "C", w)
    w = w.replace("tch", "C").replace("ch", "C").replace("sh", "C").replace("ph", "f")
    w = re.sub(r"qu(?=[eiy])", "k", w).replace("qu", "k")
    w = re.sub(r"c(?=[eiy])", "s", w).replace("c", "k")
    w = re.sub(r"g(?=[ei])", "j", w).replace("gu", "g")
    w = w.replace("ll", "y").replace("z", "s").replace("v", "b").replace("j", "h").replace("h", "")
    w = re.sub(r"y$", "i", w)
    return re.sub(r"(.)\1+", r"\1", w)


_DOZEN_SOUNDS = {sound(word): word for word in ("docena", "docenas")}


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
    modifiers: Modifiers  # group → option code: {"size": "large"}; several: {"taco_extras": ["no_onion", ...]}
    variant: Dict[str, str]  # axis → option id: {"size": "M", "color": "negro"}
    variant_sku: Optional[str]  # set when every axis of the product is given
    quantity_stated: bool  # the customer said how many ("quita la coca" removes all, "quita una coca" one)
    start: int  # the item's words: quantity, product, modifiers and variant options
    end: int
    note: Optional[str] = None  # what the kitchen should know that no option says: "bien fria"

    def as_dict(self) -> Dict[str, Any]:
        return {
            "sku": self.sku,
            "quantity": self.quantity,
            "modifiers": self.modifiers,
            "variant": self.variant,
            "variant_sku": self.variant_sku,
            "quantity_stated": self.quantity_stated,
            "note": self.note,
        }


@dataclass(frozen=True)
class Unplaced:
    """Words where the customer named a product the catalog does not have ("pozole"), or misspelt one
    too far to be sure ("pastr"): the bot says so, offering ``suggestions`` (SKUs, likeliest first)."""

    text: str
    start: int
    end: int
    suggestions: Tuple[str, ...]
    asked: bool  # in a question ("¿tienen pozole?"), not an order
    category: Optional[str] = None  # the words name a category ("3 tacos"): which ones?

    def as_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "suggestions": list(self.suggestions), "asked": self.asked}


@dataclass
class ParsedMessage:
    lines: List[OrderLine]
    mentions: List[Mention]
    unplaced: List[Unplaced] = field(default_factory=list)
    truncated: bool = False  # more than max_lines order lines, or more than max_chars of text
    cues: FrozenSet[str] = frozenset()  # "add" / "remove" / "change": what its words say to do with the cart


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
class _CategoryTarget:
    category: str


@dataclass(frozen=True)
class _ShopTarget:
    """The shop's own name: read so that its words ("Café Esquina") are not taken for products."""


_Target = Union[_ProductTarget, _ModifierTarget, _VariantTarget, _CategoryTarget, _ShopTarget]
_OptionTarget = Union[_ModifierTarget, _VariantTarget]


@dataclass
class _Item:
    product: int
    name_start: int  # the product's name words
    name_end: int
    start: int = field(init=False)  # the whole item: grows over its quantity and options
    end: int = field(init=False)
    quantity: Optional[int] = None
    by_article: bool = False  # the quantity is "un"/"a": "2 de cada uno" may still set it
    modifiers: Dict[str, Any] = field(default_factory=dict)
    variant: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    definite: bool = False  # "los de pastor": named again, not more of it
    part_of: Optional[_Item] = None  # the item this one was split off
    category_word: bool = False  # named by words that also name a category ("café", "coffee")
    halved: bool = False  # counted by "mitad"/"half": half the category's count, known once read
    changes: bool = False  # named in a clause that changes a quantity ("que sean 3 horchatas")
    twin: bool = False  # "y otro (igual)": a copy of the item before, whose options a "pero …" may change
    round: bool = False  # named in "otra ronda de …": a count after it is the round's, not more

    def __post_init__(self) -> None:
        self.start, self.end = self.name_start, self.name_end

    def cover(self, start: int, end: int) -> None:
        self.start, self.end = min(self.start, start), max(self.end, end)

    def copy(self, quantity: Optional[int], start: int, end: int) -> _Item:
        twin = _Item(self.product, self.name_start, self.name_end, quantity=quantity)
        twin.modifiers = {k: list(v) if isinstance(v, list) else v for k, v in self.modifiers.items()}
        twin.variant = dict(self.variant)
        twin.start, twin.end = start, end
        return twin

    def splits_from(self) -> _Item:
        """The item a split part came from, or the item itself."""
        return self.part_of or self


@dataclass
class _Quantity:
    value: int
    start: int
    end: int
    article: bool  # "a", "una": counts only what follows ("is the coke a glass bottle?" counts no coke)
    used: bool = False  # taken by an item, a split, a correction or "de cada"
    half: bool = False  # "mitad"/"half": half of the count said before ("una docena, mitad pastor")


@dataclass(frozen=True)
class _Options:
    targets: Tuple[_OptionTarget, ...]
    start: int
    end: int


@dataclass(frozen=True)
class _Category:
    category: str
    start: int
    end: int


@dataclass(frozen=True)
class _Other:
    """A word outside catalog phrases and quantities, kept in place for notes and unknown products."""

    key: str
    start: int
    end: int
    near: Tuple[str, ...] = ()  # SKUs it loosely resembles, when it looked like one without context
    known: bool = False  # a word of the catalog ("pan", "boba") outside any of its phrases


@dataclass
class _Clause:
    elements: List[Union[_Item, _Quantity, _Options, _Category, _Other]] = field(default_factory=list)
    question_mark: bool = False  # the clause ends with "?"
    adds: bool = False  # an ordinal, "otro", "uno más"
    group: Optional[int] = None  # "somos cuatro"
    round: bool = False  # "otra ronda de cocas": more of them, the count said after
    after_but: bool = False  # opened by "pero"/"but": may take part of what came before

    @property
    def items(self) -> List[_Item]:
        return [e for e in self.elements if isinstance(e, _Item)]

    @property
    def options(self) -> List[_Options]:
        return [e for e in self.elements if isinstance(e, _Options)]

    @property
    def quantities(self) -> List[_Quantity]:
        return [e for e in self.elements if isinstance(e, _Quantity)]

    @property
    def categories(self) -> List[_Category]:
        return [e for e in self.elements if isinstance(e, _Category)]

    @property
    def other_words(self) -> List[str]:
        return [e.key for e in self.elements if isinstance(e, _Other)]

    @property
    def catalog_elements(self) -> List[Union[_Item, _Quantity, _Options, _Category]]:
        return [e for e in self.elements if not isinstance(e, _Other)]

    def says(self, phrases: FrozenSet[Tuple[str, ...]]) -> bool:
        keys = self.other_words
        return any(tuple(keys[i : i + n]) in phrases for i in range(len(keys)) for n in PHRASE_LENGTHS)

    @property
    def categories_named(self) -> bool:
        """A category named, on its own or by a word that is also a product ("café", "coffee")."""
        return bool(self.categories) or any(i.category_word for i in self.items)

    @property
    def asks(self) -> bool:
        """Whether the clause asks about its products instead of ordering them (quantities bound)."""
        if any(item.quantity is not None for item in self.items) and self.says(ADD_VERBS):
            return False  # "any chance you could add an ice cold coke?" orders it
        if self.orders_outright:
            return False  # "from what you sent me I want 2 medium matcha lattes"
        if self.says(QUESTION_WORDS) or self.says(MENU_WORDS) and self.categories_named:
            return True
        if not self.question_mark:
            return False
        if not self.items:  # "3 de pastor sin cebolla y con piña?": the order's own options, not a question
            return not self.options
        return all(item.quantity is None for item in self.items)

    @property
    def orders_outright(self) -> bool:
        """An order verb right before a count ("I want 2 …", "dame 3 …"): an order, whatever else it says."""
        elements = [e for e in self.elements if not (isinstance(e, _Other) and e.key in ("me", "us", "nos"))]
        return any(
            isinstance(verb, _Other) and verb.key in ORDER_VERBS and isinstance(count, _Quantity) and not count.article
            for verb, count in zip(elements, elements[1:], strict=False)
        )

    @property
    def takes_back(self) -> bool:
        """Only "no", "perdón", "wait": what came before is being corrected."""
        keys = self.other_words
        return not self.catalog_elements and bool(keys) and all(k in TAKE_BACK for k in keys)

    @property
    def corrects(self) -> bool:
        """Starts with "mejor", "digo", "I mean": replaces the item before."""
        leading = []
        for element in self.elements:
            if not isinstance(element, _Other):
                break
            leading.append(element.key)
        return any(tuple(leading[i : i + n]) in CORRECTING for i in range(len(leading)) for n in (1, 2))


@lru_cache(maxsize=4096)
def _number(phrase: str) -> Optional[int]:
    """A number in words, Spanish or English: "tres", "veintiuno", "twenty one"."""
    for language in ("es", "en"):
        try:
            return text2num(phrase, language)
        except ValueError:
            continue
    return None


_SPOKEN: Dict[str, int] = {sound(word): value for word in SPOKEN_NUMBERS if (value := _number(word)) is not None}


_DIMINUTIVE = re.compile(r"(?:ec|c)?it[oa]s?$")


def _undiminished(word: str, forms: Mapping[str, str]) -> Optional[str]:
    """The catalog word a diminutive stands for: "taquitos" taco, "aguita" agua, "cafecito" café,
    "lechita" leche, "coquita" coca."""
    match = _DIMINUTIVE.search(word)
    if match is None:
        return None
    for cut in sorted({match.start(), word.rindex("it")}):  # "caf|ecito", "cafec|ito"
        stem = word[:cut]
        if len(stem) < 3:
            continue
        stems = [stem] + [stem[:-2] + swap for end, swap in (("qu", "c"), ("gu", "g")) if stem.endswith(end)]
        for candidate in (s + vowel for s in stems for vowel in ("", "o", "a", "e")):
            if candidate != word and candidate in forms:
                return candidate
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
        if "de" in self.forms:
            self.forms.update({connector: self.forms["de"] for connector in CONNECTORS})
        # "agüita" and "coquita", synonyms of their own, are "agua" and "coca" (and so are their plurals)
        bases = {lemma: _undiminished(lemma, self.forms) for lemma in set(self.forms.values())}
        self.forms = {form: self.forms.get(bases[lemma] or lemma, lemma) for form, lemma in self.forms.items()}
        self.forms.update({plural: self.forms[word] for plural, word in SHORT_PLURALS.items() if word in self.forms})
        self.by_initial: Dict[str, List[str]] = {}
        self.sounds: Dict[str, str] = {}  # sound of a form → its lemma
        self.sounds_by_initial: Dict[str, List[str]] = {}
        for word in sorted(vocabulary):
            if word.isalpha() and len(word) >= 3:
                self.by_initial.setdefault(word[0], []).append(word)
        for form in sorted(self.forms):
            if form.isalpha() and len(form) >= 3 and form not in STOP_WORDS:
                key = sound(form)
                if key and key not in self.sounds:
                    self.sounds[key] = self.forms[form]
                    self.sounds_by_initial.setdefault(key[0], []).append(key)
        self._cache: Dict[str, Optional[Tuple[str, int]]] = {}

    def lookup(self, key: str) -> Optional[Tuple[str, int]]:
        """(catalog lemma, tier) for a message word, or None: tier 0 exact, 1 a safe misspelling,
        2 a loose likeness that needs context."""
        if key not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = self._lookup(key)
        return self._cache[key]

    def _lookup(self, key: str) -> Optional[Tuple[str, int]]:
        if key in self.forms:
            return self.forms[key], 0
        if not key.isalpha() or key in STOP_WORDS or key in OTHER_FOODS or key in NOT_ITEM_WORDS or len(key) < 3:
            return None  # "times" is no misspelt "tees", "card" no "cafe"
        if len(key) < MIN_FUZZY_LENGTH:  # "tai" for "thai": the same sound, read only with context
            return (self.sounds[sound(key)], 2) if sound(key) in self.sounds else None
        if "h" + key in self.forms:  # Spanish "h" is silent and often left out: "orchata"
            return self.forms["h" + key], 1
        base = _undiminished(key, self.forms)
        if base is not None:  # "taquitos", "horchatita", "conchitas"
            return self.forms[base], 1
        for candidate in (key, key[:-1]) if key.endswith("s") else (key,):
            found = self._closest(candidate)
            if found:
                return self.forms[found], 1
        key_sound = sound(key)
        if key_sound in self.sounds:
            return self.sounds[key_sound], 1 if len(key) >= 5 else 2
        near = self._sounds_like(key_sound)
        if near is None:
            loose = self._closest(key, loose=True)  # "suger": one letter off, read only with context
            return (self.forms[loose], 2) if loose else None
        lemma, distance = near
        return lemma, 1 if len(key_sound) >= 7 and distance == 1 else 2  # "kesadías" is safe, "pastr" is not

    def _closest(self, key: str, loose: bool = False) -> Optional[str]:
        """The nearest catalog word with the same first letter: two letters swapped at any length;
        from six letters also one other edit (two from eight) when the last letters agree too, so
        "taor", "horchta" and "capuccino" are read but "queda", "while" or "player" are not.
        ``loose``: any one edit from five letters ("suger"), a likeness that needs context."""
        limit = 1 if len(key) < 8 or loose else 2
        best: Optional[Tuple[int, str]] = None
        for choice in self.by_initial.get(key[0], ()):
            distance = OSA.distance(key, choice, score_cutoff=limit)
            swapped = distance == 1 and sorted(choice) == sorted(key)
            close = distance <= limit and len(key) >= 6 and choice[-1] == key[-1]
            if loose:
                swapped, close = False, distance == 1 and len(key) >= 5 and len(choice) >= 5
            if (swapped or close) and (best is None or distance < best[0]):
                best = (distance, choice)
        return best[1] if best else None

    def _sounds_like(self, key_sound: str) -> Optional[Tuple[str, int]]:
        """(lemma, distance) one sound edit away (two from seven), same first sound: "pastr", "pastor"."""
        if len(key_sound) < MIN_FUZZY_LENGTH:
            return None
        limit = 1 if len(key_sound) < 7 else 2
        best: Optional[Tuple[int, str]] = None
        for choice in self.sounds_by_initial.get(key_sound[0], ()):
            if abs(len(choice) - len(key_sound)) > limit:
                continue
            distance = OSA.distance(key_sound, choice, score_cutoff=limit)
            if distance <= limit and (best is None or distance < best[0]):
                best = (distance, choice)
        return (self.sounds[best[1]], best[0]) if best else None


class OrderParser:
    """The catalog as phrases of normalized words, built once per catalog version."""

    def __init__(self, catalog: CatalogSnapshot, max_lines: int = MAX_LINES, max_chars: int = MAX_CHARS) -> None:
        self.products = catalog.products
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.allowed_groups = [{g.id for g in p.modifier_groups} for p in self.products]
        self.variant_skus = [{frozenset(v.attributes.items()): v.sku for v in p.variants} for p in self.products]
        groups = {g.id: g for p in self.products for g in p.modifier_groups}
        self.max_choices = {g.id: g.max_choices for g in groups.values()}
        self.option_order = {g.id: {o.code: i for i, o in enumerate(g.options)} for g in groups.values()}
        # Groups whose options are percentages ("0", "50", "100"): "30% sugar" takes the closest one.
        self.levels = {
            g.id: sorted((int(o.code), o.code) for o in g.options)
            for g in groups.values()
            if g.options and all(o.code.isdigit() for o in g.options)
        }
        # Words of category names ("refrescos", "antojitos"): asking about them is asking for the menu.
        self.category_words = {
            w.key for c in catalog.categories for label in (c.name_es, c.name_en) for w in words(label)
        }
        self.by_category: Dict[str, List[int]] = {}
        for index, product in enumerate(self.products):
            self.by_category.setdefault(product.category, []).append(index)
        phrases: Dict[Tuple[str, ...], List[_Target]] = {}
        for name in catalog.shop_names:
            _add(phrases, name, _ShopTarget())
        for category in catalog.categories:
            for label in {category.name_es, category.name_en}:
                _add(phrases, label, _CategoryTarget(category.id), product=True)
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
        for group in groups.values():
            for choice in group.options:
                for label in {choice.name_es, choice.name_en, *choice.synonyms}:
                    _add(phrases, label, _ModifierTarget(group.id, choice.code))
        self.vocabulary = _Vocabulary({word for phrase in phrases for word in phrase})
        self.phrases: Dict[Tuple[str, ...], List[_Target]] = {}
        for phrase, targets in phrases.items():
            merged = self.phrases.setdefault(tuple(self.vocabulary.forms[w] for w in phrase), [])
            merged.extend(t for t in targets if t not in merged)
        self.longest = max((len(p) for p in self.phrases), default=0)
        # Product names by how they sound run together, for names written split or joined otherwise:
        # "chila quiles", "brownsugar", "tai ti".
        self.run_sounds: Dict[str, Tuple[Tuple[str, ...], List[_Target]]] = {}
        for phrase, targets in phrases.items():
            products: List[_Target] = [t for t in targets if isinstance(t, _ProductTarget)]
            run = "".join(sound(w) for w in phrase) if all(w.isalpha() for w in phrase) else ""
            if products and len(run) >= MIN_RUN_SOUND:
                self.run_sounds.setdefault(run, (tuple(self.vocabulary.forms[w] for w in phrase), products))
        self.option_words = {
            word
            for phrase, targets in self.phrases.items()
            if any(isinstance(t, (_ModifierTarget, _VariantTarget)) for t in targets)
            for word in phrase
            if word.isalpha() and len(word) >= 3 and word not in OPTION_OPENERS
        }
        self.category_heads = {  # first words that name something ("Para llevar a casa": none)
            c.id: {
                self.vocabulary.forms.get(w[0].key, w[0].key)
                for w in map(words, (c.name_es, c.name_en))
                if w and w[0].key not in STOP_WORDS
            }
            for c in catalog.categories
        }
        self.name_words = [
            {self.vocabulary.forms.get(w.key, w.key) for name in _product_names(p) for w in words(name)}
            for p in self.products
        ]
        # Sounds of name words, for suggestions.
        self.name_sounds: Dict[str, List[int]] = {}
        for index, product in enumerate(self.products):
            for name in _product_names(product):
                for word in words(name):
                    if word.key.isalpha() and len(word.key) >= 3 and word.key not in STOP_WORDS:
                        found = self.name_sounds.setdefault(sound(word.key), [])
                        if index not in found:
                            found.append(index)

    # --- reading ---------------------------------------------------------------------------------

    def parse(self, text: str) -> ParsedMessage:
        tokens = words(text[: self.max_chars])
        truncated = len(text) > self.max_chars
        clauses = self._clauses(tokens)
        mentions = [
            Mention(self.products[i.product].sku, i.name_start, i.name_end) for clause in clauses for i in clause.items
        ]
        reading = _Reading(self, text, tokens)
        for clause in clauses:
            reading.read(clause)
        reading.finish()
        lines = [self._line(item) for item in reading.ordered if item.quantity != 0]
        if len(lines) > self.max_lines:
            lines, truncated = lines[: self.max_lines], True
        lines = _merged(lines)
        keys = {t.key for t in tokens}
        if lines and tokens[-1].key == "?" and clauses[-1].asks and not keys & ORDER_VERBS:
            if not any(line.quantity_stated for line in lines):
                lines = []  # "¿hay de tripa o nomás pastor, suadero y campechano?": one question, names listed
        cues = {
            cue
            for cue, phrases in (("add", ADD_CUES), ("remove", REMOVE_CUES), ("change", CHANGE_CUES))
            if _says(tokens, phrases)
        }
        if any(clause.adds for clause in clauses):
            cues.add("add")
        if "remove" in cues and _says(tokens, NOT_ADDING):
            cues.discard("add")  # "don't add the taro after all"
        if any(k in HALF for clause in clauses for k in clause.other_words):
            cues.add("change")  # "half as many conchas"; not "half a dozen", "half sweet", "half of them …"
        moves = "take" in keys and keys & {"off", "out", "away"} or "start" in keys and keys & {"over", "top"}
        if moves or any(_refuses(clause) for clause in clauses):
            cues.add("remove")  # "take the beans out", "no suadero pls"
        if reading.corrected:
            cues.add("corrected")
        if any(clause.asks and (clause.items or clause.categories) for clause in clauses):
            cues.add("asks")  # "an order of churros has how many?"
        if any(clause.says(MENU_WORDS) and clause.categories_named or _asks_what(clause) for clause in clauses):
            cues.add("menu")  # "let me see the coffee options", "what's in the bakery?"
        return ParsedMessage(lines, mentions, reading.unplaced, truncated, frozenset(cues))

    def _clauses(self, tokens: List[Word]) -> List[_Clause]:
        """The text as clauses of products, quantities, options and other words, in reading order.
        A clause that only takes back ("no", "perdón") is kept, empty of catalog elements."""
        found = [self.vocabulary.lookup(t.key) for t in tokens]
        matches, near = self._matches(tokens, found)
        clauses = [_Clause()]
        i = 0
        while i < len(tokens):
            clause = clauses[-1]
            if i in matches:
                end, targets = matches[i]
                start_char, end_char = tokens[i].start, tokens[end - 1].end
                product = next((t for t in targets if isinstance(t, _ProductTarget)), None)
                options = tuple(t for t in targets if isinstance(t, (_ModifierTarget, _VariantTarget)))
                category = next((t for t in targets if isinstance(t, _CategoryTarget)), None)
                last = clause.elements[-1] if clause.elements else None
                # "una milanesa en torta": two names of one product joined by "en"/"de"/"in"
                joined = isinstance(last, _Other) and last.key in NAME_JOINERS and len(clause.elements) >= 2
                if product and joined and isinstance(clause.elements[-2], _Item):
                    if clause.elements[-2].product == product.product:
                        clause.elements.pop()
                        last = clause.elements[-1]
                if (
                    product
                    and isinstance(last, _Item)
                    and last.product == product.product
                    and (last.name_end + 1 >= start_char or joined)
                ):
                    last.name_end = end_char  # "one coffee americano": two names of one product, side by side
                    last.cover(start_char, end_char)
                elif product:
                    item = _Item(product.product, start_char, end_char)
                    item.definite = _definite_before(clause)
                    item.category_word = category is not None
                    clause.elements.append(item)
                elif options:
                    clause.elements.append(_Options(options, start_char, end_char))
                elif category:
                    clause.elements.append(_Category(category.category, start_char, end_char))
                i = end
            elif tokens[i].key in SEPARATORS:
                clause.question_mark = tokens[i].key == "?"
                clauses.append(_Clause(after_but=tokens[i].key in ("pero", "but")))
                i += 1
            elif tokens[i].key in ("no", "nop", "nel") and clause.items and self._counts_next(tokens, i + 1, matches):
                # "3 jamaicas no 4": a take-back without a comma
                clauses.extend([_Clause([_Other(tokens[i].key, tokens[i].start, tokens[i].end)]), _Clause()])
                i += 1
            else:
                i = self._read_word(tokens, i, matches, clause, near)
        return [c for c in clauses if c.elements or c.group]

    def _read_word(
        self,
        tokens: List[Word],
        i: int,
        matches: Mapping[int, Any],
        clause: _Clause,
        near: Mapping[int, Tuple[str, ...]],
    ) -> int:
        """A word outside catalog phrases: an ordinal, a group size, a percentage, a quantity or other."""
        token = tokens[i]
        following = tokens[i + 1].key if i + 1 < len(tokens) else ""
        if token.key in ORDINAL_WORDS or (token.key.isdigit() and following in ORDINAL_SUFFIXES):
            clause.adds = True  # "a 3rd latte", "el segundo taro": one more, counted by its article
            return i + (1 if token.key in ORDINAL_WORDS else 2)
        if token.key.isdigit() and following == "%" and self.levels:
            level = _Options(self._level_targets(int(token.key)), token.start, tokens[i + 1].end)
            clause.elements.append(level)
            return i + 2
        previous = clause.elements[-1] if clause.elements else None
        if token.key in HALF:  # "mitad pastor", "mitad de suadero", "half of them pastor"
            after = i + 1 + (i + 1 < len(tokens) and tokens[i + 1].key in ("de", "of"))
            if after in matches:
                clause.elements.append(_Quantity(0, token.start, token.end, article=False, half=True))
                return after
            if after < len(tokens) and tokens[after].key in THEM:
                clause.elements.append(_Quantity(0, token.start, tokens[after].end, article=False, half=True))
                return after + 1
        if token.key == "a" and following == "ver":
            clause.elements.append(_Other("ver", token.start, tokens[i + 1].end))
            return i + 2  # "a ver…": let's see, not one of something
        if token.key in ARTICLES and following in ("como", "cuanto"):
            clause.elements.append(_Other(token.key, token.start, token.end))  # "¿a cómo dan …?" asks a price
            return i + 1
        if token.key in SET_TO and _quantity(tokens, i + 1, matches)[0] is not None:
            clause.elements.append(_Other(token.key, token.start, token.end))  # "cambia las horchatas a una"
            return i + 1
        if token.key == "media" and following == "de" and any(t.key in DOZEN for t in tokens[:i]):
            clause.elements.append(_Quantity(6, token.start, token.end, article=False))  # "... y media de suadero"
            return i + 1
        heard = HEARD_COUNTS.get(token.key)
        after_verb = not i or tokens[i - 1].key in ORDER_VERBS or token.key == "for" and tokens[i - 1].key in SEPARATORS
        if heard and after_verb and self._names_product(matches.get(i + 1)):
            clause.elements.append(_Quantity(heard, token.start, token.end, article=False))
            return i + 1  # "can I get for campechano tacos": four, as a voice dictation wrote it
        quantity, after = _quantity(tokens, i, matches)
        if quantity is not None and isinstance(previous, _Other) and previous.key in SET_TO:
            quantity.article = False  # "a una", "to one": a count, after the product too
        if quantity is not None and isinstance(previous, _Other) and previous.key == "cada":
            quantity, after = None, i + 1  # "cada uno" is each, not one more
        if quantity is not None:
            before = previous.key if isinstance(previous, _Other) else ""
            next_key = tokens[after].key if after < len(tokens) else ""
            counted = any(isinstance(t, (_ProductTarget, _CategoryTarget)) for t in matches.get(after, (0, []))[1])
            at_time = before == "at" or before == "las" and i >= 2 and tokens[i - 2].key == "a"
            if at_time and not counted and next_key not in ("de", "of"):
                clause.elements.append(_Other(token.key, token.start, token.end))
                return after  # "a las 4 tenemos junta", "at 5": a time of day
            round_at = after + (next_key in MORE)
            if round_at < len(tokens) and tokens[round_at].key in ROUNDS and quantity.value == 1:
                clause.round = tokens[round_at].key not in ("vez", "time")
                clause.adds = clause.adds or clause.round
                clause.elements.append(_Other(tokens[round_at].key, token.start, tokens[round_at].end))
                return round_at + 1  # "otra ronda de cocas, 3 más", "one more round": more, counted later
            we_are = before == "are" and i >= 2 and tokens[i - 2].key == "we"
            for_the = before in GROUP_THE and i >= 2 and tokens[i - 2].key in GROUP_FOR
            of_us = next_key == "of" and after + 1 < len(tokens) and tokens[after + 1].key == "us"
            group_of = before in ("of", "de") and i >= 2 and tokens[i - 2].key in GROUP_NOUNS
            # "vamos a ser tres", "we'll be four": a size, unless a product follows ("van a ser 3 tacos")
            will_be = before in ("ser", "be") and i >= 2 and tokens[i - 2].key in ("a", "we'll", "will", "gonna")
            named_at = after + (after < len(tokens) and tokens[after].key in ("de", "of"))
            will_be = will_be and not self._names_product(matches.get(named_at))
            if quantity.article and next_key in GROUP_NOUNS:
                clause.elements.append(_Other(token.key, token.start, token.end))
                return after  # "we're a group of six": its size comes after
            if before in GROUP_BEFORE or next_key in GROUP_AFTER or we_are or for_the or of_us or group_of or will_be:
                clause.group = quantity.value
                return after + (2 if of_us else 1 if next_key in GROUP_AFTER else 0)
            if before in ("los", "las") and not counted and next_key not in ("de", "of"):
                clause.elements.append(_Other(token.key, token.start, tokens[after - 1].end))
                return after  # "..., los dos grandes": the items named, not a count
            clause.elements.append(quantity)
            if next_key in MORE:  # "uno más", "2 more lattes"
                clause.adds = True
                return after + 1
            if token.key in ANOTHER or before in ANOTHER:  # "otro", "otros dos", "another 2"
                clause.adds = True
            return after
        if token.key in MORE and isinstance(previous, _Item):
            clause.adds = True  # "3 conchas más", "two lattes more"
        for j in range(i, after):
            known = self.vocabulary.forms.get(tokens[j].key) is not None or tokens[j].key in self.category_words
            clause.elements.append(_Other(tokens[j].key, tokens[j].start, tokens[j].end, near.get(j, ()), known))
        return after

    @staticmethod
    def _counts_next(tokens: List[Word], i: int, matches: Mapping[int, Any]) -> bool:
        quantity = _quantity(tokens, i, matches)[0]
        return quantity is not None and not quantity.article

    @staticmethod
    def _names_product(match: Optional[Tuple[int, List[_Target]]]) -> bool:
        return match is not None and any(isinstance(t, _ProductTarget) for t in match[1])

    def _level_targets(self, percent: int) -> Tuple[_OptionTarget, ...]:
        """ "30%" as the closest level of each percentage group (ties go to the lower level)."""
        return tuple(
            _ModifierTarget(group, min(levels, key=lambda level: (abs(level[0] - percent), level[0]))[1])
            for group, levels in self.levels.items()
        )

    def _matches(
        self, tokens: List[Word], found: Sequence[Optional[Tuple[str, int]]]
    ) -> Tuple[Dict[int, Tuple[int, List[_Target]]], Dict[int, Tuple[str, ...]]]:
        """Catalog phrases in the text by first word index: longest first, then fewest misspelt words,
        then leftmost; a word belongs to one phrase at most. Loose likenesses (tier 2) count only
        with context; those left out come back as ``near`` (word index → SKUs it resembles)."""
        candidates = []
        near: Dict[int, Tuple[str, ...]] = {}
        for start in range(len(found)):
            span: List[Tuple[str, int]] = []  # found[start:end], which has no None
            for end in range(start + 1, min(start + self.longest, len(found)) + 1):
                word = found[end - 1]
                if word is None:
                    break
                span.append(word)
                targets = self.phrases.get(tuple(f[0] for f in span))
                if not targets:
                    continue
                tiers = [f[1] for f in span]
                if max(tiers) == 2 and not self._in_context(tokens, start, end, tiers):
                    skus = tuple(self.products[t.product].sku for t in targets if isinstance(t, _ProductTarget))
                    if skus and end - start == 1:
                        near[start] = skus
                    continue
                candidates.append((start - end, sum(tiers), start, end, targets))
        spans = {(c[2], c[3]) for c in candidates}
        for start, end, tier, targets in self._run_matches(tokens, found):
            if (start, end) not in spans:
                candidates.append((start - end, tier * (end - start), start, end, targets))
        taken = [False] * len(found)
        chosen: Dict[int, Tuple[int, List[_Target]]] = {}
        for _, _, start, end, targets in sorted(candidates, key=lambda c: c[:3]):
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                chosen[start] = (end, targets)
        return chosen, {i: skus for i, skus in near.items() if not taken[i]}

    def _run_matches(
        self, tokens: List[Word], found: Sequence[Optional[Tuple[str, int]]]
    ) -> List[Tuple[int, int, int, List[_Target]]]:
        """Product names written as other words that sound the same run together: "chila quiles",
        "brownsugar", "thai tee" (a T-shirt is a "tee" only on its own), "tai ti". (start, end, tier,
        targets); a tier 2 run counts only with context, as a loose likeness does."""
        runs = []
        for start in range(len(tokens)):
            for end in range(start + 1, min(start + MAX_RUN_WORDS, len(tokens)) + 1):
                keys = [t.key for t in tokens[start:end]]
                if not all(k.isalpha() and len(k) >= 2 for k in keys) or all(k in STOP_WORDS for k in keys):
                    break
                run = "".join(sound(k) for k in keys)
                match = self.run_sounds.get(run) or self.run_sounds.get(run[:-1] if run.endswith("s") else "")
                if match is None or tuple(f[0] if f else None for f in found[start:end]) == match[0]:
                    continue
                tier = 1 if len(run) >= MIN_SAFE_RUN_SOUND else 2
                tiers = [0 if f and f[1] == 0 else 2 for f in found[start:end]]
                if tier == 1 or self._in_context(tokens, start, end, tiers):
                    runs.append((start, end, tier, match[1]))
        return runs

    def _in_context(self, tokens: List[Word], start: int, end: int, tiers: List[int]) -> bool:
        """A loose likeness is read when a real word of its phrase is exact ("matcha late", "té tai"), a
        quantity comes right before it ("2 d pastr", "un orchata") or an option of the catalog right
        after it ("un tai grande", "tai sin boba")."""
        for k, tier in zip(range(start, end), tiers, strict=True):
            key = tokens[k].key
            if tier == 0 and key.isalpha() and (len(key) >= 3 and key not in STOP_WORDS or end - start > 1):
                return True
        after = end
        while after < len(tokens) and tokens[after].key in OPTION_OPENERS:
            after += 1
        if after < len(tokens) and self.vocabulary.forms.get(tokens[after].key) in self.option_words:
            return True
        j = start - 1
        while j >= 0 and tokens[j].key in ("de", "of"):
            j -= 1
        if j < 0:
            return False
        key = tokens[j].key
        if key in ONE or key in SOME:  # "a taxi" is no thai tea: after an article, five letters at least,
            # or four that sound exactly like the product's word at the end of a clause ("y una koka")
            last = end == len(tokens) or tokens[end].key in SEPARATORS
            loose = [tokens[k].key for k, tier in zip(range(start, end), tiers, strict=True) if tier == 2]
            return all(len(k) >= 5 or last and len(k) == 4 and sound(k) in self.vocabulary.sounds for k in loose)
        return key.isdigit() or key in DOZEN or key in ("par", "couple") or _number(key) is not None

    # --- items -----------------------------------------------------------------------------------

    def attach(self, options: _Options, items: Sequence[_Item]) -> Optional[_Item]:
        """Give the options to the nearest item before them that takes them, else the nearest after;
        returns that item, or None when none takes them."""
        before = [i for i in reversed(items) if i.name_start < options.start]
        after = [i for i in items if i.name_start >= options.start]
        for item in before + after:
            if self.place(options, item):
                item.cover(options.start, options.end)
                return item
        return None

    def takes(self, options: _Options, item: _Item) -> bool:
        """Whether the product has any of these options at all, chosen or not."""
        return any(
            t.group in self.allowed_groups[item.product]
            if isinstance(t, _ModifierTarget)
            else t.product == item.product
            for t in options.targets
        )

    def place(self, options: _Options, item: _Item, dry_run: bool = False, instead: bool = False) -> bool:
        """Put the options on the item if the product takes them and that choice is still open
        (``instead``: in place of the choice made, for a group of one choice and a variant's axis)."""
        for target in options.targets:
            if isinstance(target, _ModifierTarget):
                if target.group not in self.allowed_groups[item.product]:
                    continue
                limit = self.max_choices.get(target.group, 1)
                chosen = None if instead and limit == 1 else item.modifiers.get(target.group)
                if limit > 1:
                    codes = list(chosen or [])
                    if target.code in codes or len(codes) >= limit:
                        continue
                    if not dry_run:
                        order = self.option_order[target.group]
                        item.modifiers[target.group] = sorted(codes + [target.code], key=lambda c: order.get(c, 0))
                    return True
                if chosen is None:
                    if not dry_run:
                        item.modifiers[target.group] = target.code
                    return True
            elif target.product == item.product and (instead or target.axis not in item.variant):
                if not dry_run:
                    item.variant[target.axis] = target.option
                return True
        return False

    def category_of(self, key: str) -> Optional[str]:
        """The category a word names, if one: the first word of a category's name ("agua" of "Aguas
        frescas", not of "Refrescos y agua"), else in the names of several products, all of one category
        ("té" of the teas)."""
        lemma = self.vocabulary.forms.get(key, key)
        if key in NOT_ITEM_WORDS:
            return None
        labels = [c for c, heads in self.category_heads.items() if lemma in heads]
        if len(labels) == 1:
            return labels[0]
        named = [self.products[i].category for i, names in enumerate(self.name_words) if lemma in names]
        return named[0] if len(named) >= 2 and len(set(named)) == 1 else None

    def without_name(self, product: int, note: str) -> str:
        """A note without the product's own name words: "3 thai iced teas" notes "iced", not "iced teas"."""
        kept = [w for w in words(note) if self.vocabulary.forms.get(w.key, w.key) not in self.name_words[product]]
        return " ".join(note[w.start : w.end] for w in kept if w.key not in PUNCTUATION)

    def suggestions(self, text: str) -> Tuple[str, ...]:
        """SKUs whose name words sound close to a word of ``text`` (closest first, at most three)."""
        scored: Dict[int, int] = {}
        for word in words(text):
            if not word.key.isalpha() or len(word.key) < 4 or word.key in STOP_WORDS:
                continue
            key = sound(word.key)
            limit = 1 if len(key) < 6 else 2
            for name_sound, indexes in self.name_sounds.items():
                if abs(len(name_sound) - len(key)) > limit or name_sound[:1] != key[:1]:
                    continue
                distance = OSA.distance(key, name_sound, score_cutoff=limit)
                if distance <= limit:
                    for index in indexes:
                        scored[index] = min(scored.get(index, distance), distance)
        ranked = sorted(scored, key=lambda index: (scored[index], index))
        return tuple(self.products[index].sku for index in ranked[:3])

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
            ", ".join(item.notes) or None,
        )


class _Reading:
    """The items ordered so far in one message, and what could not be placed."""

    def __init__(self, parser: OrderParser, text: str, tokens: Sequence[Word]) -> None:
        self.parser = parser
        self.text = text
        self.ordered: List[_Item] = []
        self.unplaced: List[Unplaced] = []
        self.group: Optional[int] = None
        self.group_from = 0  # the items ordered after the group's size was said
        self.each_kind: Optional[Tuple[List[_Item], int]] = None  # "2 de cada uno": the items, the count
        # the message corrected an item it ordered itself ("2 cocas, no, mejor 4"), not one of the cart
        self.corrected = False
        self.categories: List[str] = []  # categories named so far ("aguas frescas", "tacos")
        self.category_count: Optional[int] = None  # the last count of a category: "una docena de tacos"
        self.taking_back = False  # the clause before only took back: "no", "perdón", "wait"
        self.replacing = False  # ... with a word that also replaces a product named before
        # after a correction that counts again products the message ordered before it, how many items
        # came before the correction: later counts of those products replace them too
        self.restated: Optional[int] = None
        self.each_count: Optional[int] = None  # "two of each:" before the kinds are named
        self.each_pending: List[_Item] = []  # "un americano pa cada uno": each of a group not yet said
        self.asked: Optional[_Item] = None  # the one product the clause before asked about: "¿tienen taro?"
        self.each_open = False  # "a cada quien una torta y un agua": items listed next are each too
        self.with_me = _says(tokens, WITH_ME)  # "mi esposo y yo": a pair, when "each" counts

    def read(self, clause: _Clause) -> None:
        if clause.group:
            self.group, self.group_from = clause.group, len(self.ordered)
            for item in self.each_pending:  # "una quesadilla por cabeza, somos 4": the group said after
                item.quantity = (item.quantity or 1) * clause.group
            self.each_pending = []
        _bind_quantities(clause)
        words = [e for e in clause.elements if not (isinstance(e, _Other) and e.key in ("de", "of"))]
        for before, after in zip(words, words[1:], strict=False):
            if isinstance(before, _Quantity) and isinstance(after, _Category) and not before.half:
                self.category_count = before.value  # "una docena de tacos", "6 tacos"
        for item in clause.items:
            if item.quantity == 0 and item.halved:
                item.quantity = self.category_count // 2 if self.category_count else None
        if clause.takes_back:
            self.taking_back = True
            self.replacing = self.replacing or bool(REPLACING & set(clause.other_words))  # "no, al revés"
            return
        if self.asked is not None and not clause.catalog_elements and set(clause.other_words) <= AGREEING:
            return  # "¿todavía hay chilaquiles? si sí, mándame unos": the question still stands
        correcting, self.taking_back = self.taking_back or clause.corrects, False
        replacing, self.replacing = self.replacing or clause.corrects, False
        self.categories.extend(c.category for c in clause.categories)
        if clause.asks:
            self._unknown_asked(clause)
            self.asked = clause.items[0] if len(clause.items) == 1 else None
            return
        if _weighs_options(clause):
            self.asked = None
            return  # "¿taro o matcha?", "taro or brown sugar…": thinking aloud, the choice comes after
        each = clause.says(EACH)
        if each and not clause.items and self._each_kind(clause):
            return
        if each and not clause.items and not self.ordered and clause.quantities:
            self.each_count = clause.quantities[0].value  # "two of each: pastor, suadero"
            return
        if each and len(clause.items) == 1 and self._each_of_item(clause):
            return
        if clause.items:
            if (replacing or self.restated is not None) and self._restates(clause):
                pass  # "3 de pastor y 2 de suadero... no, al revés: 2 de pastor y 3 de suadero"
            elif (
                (replacing or clause.after_but and clause.says(CONVERTING))
                and self.ordered
                and self._converts_part(clause)
            ):
                pass  # "3 americanos pero uno mejor que sea latte": one of the three becomes a latte
            elif replacing and self.ordered:
                replaced = self.ordered.pop()  # "una coca, no, mejor una jamaica"
                self.corrected = self.corrected or not replaced.changes
                if clause.items[0].quantity is None:  # "2 de pastor, perdón, de suadero": two of suadero
                    clause.items[0].quantity = replaced.quantity
            self._items(clause, each)
        elif self.asked is not None:
            self._takes_asked(clause, self.asked)
        elif self.ordered:
            self._follow_up(clause, correcting, each)
        self.asked = None
        self._unknown_ordered(clause)

    # --- clauses with products -------------------------------------------------------------------

    def _restates(self, clause: _Clause) -> bool:
        """A correction that counts again what the message ordered before it ("2 cocas y una jamaica, no,
        mejor 3 cocas") replaces those items, not the last one; so do the counts after it ("…, al revés:
        2 de pastor y 3 de suadero")."""
        earlier = self.ordered[: self.restated] if self.restated is not None else self.ordered
        counted = {item.product for item in clause.items if item.quantity is not None}
        again = [item for item in earlier if item.product in counted and item.quantity != 0]
        if not again:
            return False
        if self.restated is None:
            self.restated = len(self.ordered)
        for item in again:
            self.ordered.remove(item)
            self.restated -= 1
        self.corrected = True
        return True

    def _converts_part(self, clause: _Clause) -> bool:
        """A counted part of the item before, said after "pero"/"but" or as "of them", becomes another
        product: "3 americanos pero uno mejor que sea latte", "3 lattes, actually make one of them an
        americano". The count moves; the rest of the item stays."""
        previous, items = self.ordered[-1], clause.items
        if len(items) != 1 or items[0].quantity is None or items[0].product == previous.product:
            return False
        if not (clause.after_but or THEM & set(clause.other_words)) or items[0].quantity >= (previous.quantity or 0):
            return False
        previous.quantity = (previous.quantity or 0) - items[0].quantity
        self.corrected = True
        return True

    def _items(self, clause: _Clause, each: bool) -> None:
        items = clause.items
        for item in items:
            item.changes = clause.says(CHANGE_CUES)
            item.round = clause.round
        for options in clause.options:
            if self.parser.attach(options, items) is None:
                _nearest(items, options.start).notes.append(self.text[options.start : options.end])
        self._notes(clause, items)
        for item in items:
            if item.quantity is None and self.each_count:
                item.quantity = self.each_count
            again = self._named_before(item)
            if again is not None:  # "los de pastor con piña": options for the earlier item, no more units
                for key, value in item.modifiers.items():
                    for code in value if isinstance(value, list) else [value]:
                        self.parser.place(_Options((_ModifierTarget(key, code),), item.start, item.end), again)
                again.notes.extend(item.notes)
                item.quantity = 0  # said again, not ordered again
                continue
            if each and not self.group and self.with_me and item.quantity is not None:
                self.group = 2  # "para mi esposo y para mí, un latte cada uno", "for my wife and me, … each"
            if each and not self.group and item.quantity is not None:
                self.each_pending.append(item)
            if not each and item.quantity is not None and not item.by_article:
                self.each_open = False  # "…, a cada quien una torta, y 2 cocas para compartir"
            carried = self.each_open and item.by_article and item.quantity == 1 and not each
            carried = carried and not PERSONAL & set(clause.other_words)  # "… cada una y yo un café"
            if carried and self.group:
                item.quantity = self.group  # "a cada quien una torta y un agua": the agua each too
            if each and self.group and item.quantity is not None:
                self.each_open = True
                item.quantity *= self.group  # "somos cuatro, una torta pa cada uno"
                # "para 3: una torta y una coca por persona": the items listed with it, by their article
                for listed in self.ordered[self.group_from :]:
                    if listed.by_article and listed.quantity == 1:
                        listed.quantity = self.group
            self.ordered.append(item)

    def _named_before(self, item: _Item) -> Optional[_Item]:
        if not item.definite or item.quantity is not None:
            return None
        return next((i for i in reversed(self.ordered) if i.product == item.product and i.quantity != 0), None)

    def _notes(self, clause: _Clause, items: List[_Item], follow_up: bool = False) -> None:
        """Notes go to the item before them ("una coca bien fría"); in a clause of its own, to the
        item the clause speaks of ("2 horchatas, bien frías")."""
        for start, end in _note_spans(clause):
            before = [i for i in items if i.name_start < start]
            if before or (follow_up and items):
                item = (before or items)[-1]
                note = self.parser.without_name(item.product, self.text[start:end])
                if note:
                    item.notes.append(note)

    # --- clauses without a product ----------------------------------------------------------------

    def _follow_up(self, clause: _Clause, correcting: bool, each: bool) -> None:
        """A clause without a product speaks of the item before it."""
        previous = self.ordered[-1]
        quantities = [q for q in clause.quantities if not q.used]
        # "y uno sin nada", "3 pastor with pineapple, 3 without": a part without the options
        plain = any(k in PLAIN for k in clause.other_words) or (
            not clause.options and clause.other_words[-1:] in (["sin"], ["without"])
        )
        target = previous
        if quantities and quantities[0].half:  # "..., half of them without boba": half of the item's count
            quantities[0].value = (previous.splits_from().quantity or 0) // 2
            if not quantities[0].value:
                quantities = []
        if quantities:
            count = quantities[0]
            count.used = True
            parent = previous.splits_from()
            # "uno con avena y otro deslactosado": the next part of a split, not one more
            in_split = previous.part_of is not None and count.value <= (parent.quantity or 0)
            # "dos tortas, una sin jitomate": a part with its own note
            noted = bool(_note_spans(clause)) and count.value < (previous.quantity or 0)
            # "un par de horchatas, una para mí y otra pa mi hermana": who each one is for
            for_whom = count.value < (previous.quantity or 0) and any(k in GROUP_FOR for k in clause.other_words)
            # "tres conchas, dos de vainilla": a kind the product's own names tell, of the count said
            named = self._named_by_rest(clause, count, previous)
            bare = len(words(self.text[previous.name_start : previous.name_end])) == 1  # not "… de chocolate"
            kind = named == previous.product and bare and count.value < (previous.quantity or 0)
            plain = plain and named in (None, previous.product)  # "y una natural" after "agua de horchata"
            if correcting or (each and len(clause.catalog_elements) == 1):
                self._recount(count, previous, each)
            elif clause.options or plain or in_split or noted or for_whom or kind:
                target = self._part(clause, count, parent, in_split)
            elif previous.round and previous.quantity is None:  # "otra ronda de cocas, 3 más"
                previous.quantity = count.value
                previous.cover(count.start, count.end)
            elif clause.adds and _unknown_after(clause.elements, clause.elements.index(count) + 1) is None:
                # "y otro", "one more"; not "otra junta", another of something the catalog lacks
                target = previous.copy(count.value, count.start, count.end)
                target.twin = True
                self.ordered.append(target)
            elif previous.quantity is None and len(clause.catalog_elements) == 1:  # "..., 3 porfa"
                previous.quantity = count.value
                previous.cover(count.start, count.end)
            elif named is not None:  # "4 conchas de chocolate y 2 de vainilla", "un agua de horchata y una natural"
                target = _Item(named, count.start, clause.elements[-1].end, quantity=count.value)
                self.ordered.append(target)
            else:
                count.used = False  # "... y una ojaldra": a count of something else
        for options in clause.options:
            # "y otro igual pero chico": the twin takes the other option instead of the one it copied
            if self.parser.place(options, target) or target.twin and self.parser.place(options, target, instead=True):
                target.cover(options.start, options.end)
            else:
                target.notes.append(self.text[options.start : options.end])
        self._notes(clause, [target], follow_up=True)

    def _takes_asked(self, clause: _Clause, asked: _Item) -> None:
        """ "¿tienen campechanos? ponme 4", "do you have taro? I'll take two": a count right after a
        question about one product orders that product, when the clause says to ("ponme", "take") or
        says nothing else ("2 porfa"), and no word the catalog lacks follows the count."""
        others = clause.other_words
        idle = NOT_ITEM_WORDS | STOP_WORDS - HAVING
        if not any(k in ORDER_VERBS for k in others) and not all(k in idle for k in others):
            return  # "¿cuánto cuesta el termo? tengo 200"
        some = next((e for e in clause.elements if isinstance(e, _Other) and e.key in SOME), None)
        if some is not None and not clause.quantities and any(k in ORDER_VERBS for k in others):
            clause.elements.append(_Quantity(1, some.start, some.end, article=True))  # "si sí, mándame unos"
        for index, count in enumerate(clause.elements):
            if isinstance(count, _Quantity) and not count.used:
                if _unknown_after(clause.elements, index + 1) is None:
                    count.used = True
                    item = asked.copy(count.value, count.start, count.end)
                    self.ordered.append(item)
                    for options in clause.options:
                        if self.parser.place(options, item):
                            item.cover(options.start, options.end)
                return

    def _named_by_rest(self, clause: _Clause, count: _Quantity, previous: _Item) -> Optional[int]:
        """The product whose name the words after the count finish, begun by the item's first word: "2 de
        vainilla" after "conchas" ("concha de vainilla"), "una natural" after "agua de horchata" ("agua
        natural"); None when they finish none."""
        forms = self.parser.vocabulary.forms
        name = words(self.text[previous.name_start : previous.name_end])
        rest = clause.elements[clause.elements.index(count) + 1 :]
        if not name or not rest or not all(isinstance(e, _Other) for e in rest):
            return None
        head = forms.get(name[0].key, name[0].key)
        keys = [forms.get(e.key, e.key) for e in rest if isinstance(e, _Other)]
        for n in range(len(keys), 0, -1):
            targets = self.parser.phrases.get((head, *keys[:n]), [])
            products = [t.product for t in targets if isinstance(t, _ProductTarget)]
            if products:
                return previous.product if previous.product in products else products[0]
        return None

    def _recount(self, count: _Quantity, previous: _Item, each: bool) -> None:
        """ "2 cocas, no, mejor 4": the count replaces the one before; "pastor y suadero, dos de cada
        uno": it is the count of every item named without one."""
        if not each:
            self.corrected = self.corrected or not previous.changes
            previous.quantity, previous.by_article = count.value, False
            previous.cover(count.start, count.end)
            return
        for item in self.ordered:
            if item.quantity is None or item.by_article:
                item.quantity, item.by_article = count.value, False

    def _part(self, clause: _Clause, count: _Quantity, previous: _Item, in_split: bool = False) -> _Item:
        """ "tres taros: dos con leche de avena y uno sin nada" splits the three; "un latte con avena y
        otro con almendra" (or options the item has chosen already) is one more."""
        fits = all(
            self.parser.place(o, previous, dry_run=True) or not self.parser.takes(o, previous) for o in clause.options
        )  # an option the product does not have ("1 sin azúcar" of americanos) is a note of the part
        remaining = previous.quantity
        # "2 de pastor sin cebolla y 2 sin cilantro": the whole count again, of an item with options of its own,
        # is more of it with other options
        again = (
            not in_split and count.value == remaining and bool(previous.modifiers or previous.variant or previous.notes)
        )
        if (not clause.adds or in_split) and fits and not again and (remaining is None or count.value <= remaining):
            part = previous.copy(count.value, count.start, count.end)
            part.part_of = previous
            # an uncounted item ("lattes: uno con avena y uno con almendra") is only its parts
            previous.quantity = remaining - count.value if remaining is not None else 0
            self.ordered.insert(self.ordered.index(previous) + 1 + _parts_after(self.ordered, previous), part)
            return part
        item = _Item(previous.product, count.start, count.end, quantity=count.value)
        self.ordered.append(item)
        return item

    def _each_kind(self, clause: _Clause) -> bool:
        """ "uno de cada sabor" (of the category named), "one of each kind of taco": one line per
        product of the category. False when no category is known."""
        category = next(iter(c.category for c in clause.categories), None) or (
            self.categories[-1] if self.categories else None
        )
        if category is None:  # "dos tés de cada sabor": the teas
            known = (e.key for e in clause.elements if isinstance(e, _Other) and e.known)
            category = next((c for c in map(self.parser.category_of, known) if c), None)
        if category is None and not any(k in KINDS for k in clause.other_words):
            return False
        if category is None and self.ordered:
            category = self.parser.products[self.ordered[-1].product].category
        if category is None:
            return False
        counts = [q for q in clause.quantities if not q.used]
        value = counts[0].value if counts else 1
        for count in counts[:1]:
            count.used = True
        start, end = clause.elements[0].start, clause.elements[-1].end
        kinds = [_Item(index, start, end, quantity=value) for index in self.parser.by_category.get(category, [])]
        self.ordered.extend(kinds)
        self.each_kind = (kinds, value)
        return True

    def _each_of_item(self, clause: _Clause) -> bool:
        """ "un agua de cada una", "uno de cada agua": a product whose name also names a category, right
        before "de cada" / "of each" or after "cada" / "each", is one of each product of that category."""
        item = clause.items[0]
        position = clause.elements.index(item)
        following = [e.key for e in clause.elements[position + 1 : position + 3] if isinstance(e, _Other)]
        before = [e.key for e in clause.elements[max(position - 1, 0) : position] if isinstance(e, _Other)]
        if following not in (["de", "cada"], ["of", "each"]) and before not in (["cada"], ["each"], ["every"]):
            return False  # "uno de cada agua" too
        name = words(self.text[item.name_start : item.name_end])
        category = next((c for c in (self.parser.category_of(w.key) for w in name) if c), None)
        if category is None or category == self.parser.products[item.product].category:
            return False
        for index in self.parser.by_category.get(category, []):
            self.ordered.append(_Item(index, item.start, item.end, quantity=item.quantity or 1))
        return True

    # --- what could not be placed ------------------------------------------------------------------

    def _unknown_ordered(self, clause: _Clause) -> None:
        """A count with no product after it ("2 pozoles", "quiero un pozole"), or a word that looked
        like a product but had no context ("quiero pastr"): said back, with what it may mean. After an
        article or without a count, only where the clause orders ("thanks a lot" orders nothing)."""
        orders = any(k in ORDER_VERBS for k in clause.other_words)
        for index, element in enumerate(clause.elements):
            if len(self.unplaced) >= MAX_UNPLACED:
                return
            listed = index == 0 and bool(self.ordered)  # "2 capuchinos y una ojaldra"
            if isinstance(element, _Quantity) and not element.used and (orders or listed or not element.article):
                span = _unknown_after(clause.elements, index + 1)
                if span:
                    self._unplaced(clause.elements[span[0] : span[1]], asked=False)
            elif isinstance(element, _Other) and element.near and orders:
                if not any(u.start <= element.start < u.end for u in self.unplaced):
                    self.unplaced.append(Unplaced(element.key, element.start, element.end, element.near, False))

    def _unknown_asked(self, clause: _Clause) -> None:
        """ "¿tienen pozole?", "do you sell tamales?": a product the catalog does not have."""
        if clause.items or len(self.unplaced) >= MAX_UNPLACED:
            return
        for index, element in enumerate(clause.elements):
            # "are there any machaca burritos?": the first of the asking words that a product word follows
            if isinstance(element, _Other) and (element.key in ASKING_FOR or element.key in KINDS):
                span = _unknown_after(clause.elements, index + 1, asked=True)
                if span:
                    self._unplaced(clause.elements[span[0] : span[1]], asked=True)
                    return

    def finish(self) -> None:
        """ "cuatro tacos: dos de pastor y dos de suadero": a count of a category that the message
        goes on to itemise was no unknown product; "2 tacos de cada uno: pastor y suadero": the kinds
        listed after "de cada uno" are the ones, each with its count."""
        if self.each_kind is not None:
            kinds, value = self.each_kind
            categories = {self.parser.products[k.product].category for k in kinds}
            listed = [
                i
                for i in self.ordered[self.ordered.index(kinds[-1]) + 1 :]
                if i.quantity is None and self.parser.products[i.product].category in categories
            ]
            if listed:
                for kind in kinds:
                    kind.quantity = 0
                for item in listed:
                    item.quantity = value
        named = {self.parser.products[item.product].category for item in self.ordered if item.quantity != 0}
        self.unplaced = [u for u in self.unplaced if not (u.category and u.category in named)]
        for index, item in enumerate(self.ordered):
            # "dos aguas, una de horchata y una de jamaica": "aguas" is a product and a category's name
            # too; the count the message goes on to itemise in that category is no product of its own
            name = words(self.text[item.name_start : item.name_end])
            category = self.parser.category_of(name[0].key) if len(name) == 1 else None
            if not category or not item.quantity:
                continue
            later = self.ordered[index + 1 :]  # "tres cafés, dos americanos y un latte" too
            parts = [i.quantity or 0 for i in later if self.parser.products[i.product].category == category]
            if len(parts) >= 2 and sum(parts) == item.quantity:
                item.quantity = 0

    def _unplaced(self, run: Sequence[Any], asked: bool) -> None:
        """``run``: the _Other and _Category elements of the words (from _unknown_after)."""
        start, end = run[0].start, run[-1].end
        text = self.text[start:end]
        near = tuple(sku for e in run if isinstance(e, _Other) for sku in e.near)
        category = next((e.category for e in run if isinstance(e, _Category)), None)
        if category is not None:  # "3 tacos": which ones?
            near += tuple(self.parser.products[i].sku for i in self.parser.by_category.get(category, []))
        suggestions = tuple(dict.fromkeys(near + self.parser.suggestions(text)))[:3]
        self.unplaced.append(Unplaced(text, start, end, suggestions, asked, category))


# --- helpers -------------------------------------------------------------------------------------


def _merged(lines: List[OrderLine]) -> List[OrderLine]:
    """Lines of the same thing, with the same options and note, as one: "una quesadilla para mí y otra
    para mi hijo" is two quesadillas."""
    merged: List[OrderLine] = []
    for line in lines:
        same = next(
            (
                m
                for m in merged
                if (m.sku, m.variant_sku, m.modifiers, m.variant, m.note)
                == (line.sku, line.variant_sku, line.modifiers, line.variant, line.note)
            ),
            None,
        )
        if same is None:
            merged.append(line)
        else:
            same.quantity += line.quantity
            same.quantity_stated = same.quantity_stated or line.quantity_stated
            same.start, same.end = min(same.start, line.start), max(same.end, line.end)
    return merged


def _says(tokens: Sequence[Word], phrases: FrozenSet[Tuple[str, ...]]) -> bool:
    keys = [t.key for t in tokens]
    return any(tuple(keys[i : i + n]) in phrases for i in range(len(keys)) for n in PHRASE_LENGTHS)


def _weighs_options(clause: _Clause) -> bool:
    """Two products or more, none counted, with "o"/"or" between them: a choice not yet made."""
    items = clause.items
    if len(items) < 2 or any(item.quantity is not None for item in items):
        return False
    between = [e for e in clause.elements if items[0].end <= e.start and e.end <= items[-1].start]
    return any(isinstance(e, _Other) and e.key in ("o", "or", "u") for e in between)


def _asks_what(clause: _Clause) -> bool:
    """ "what's in the bakery?", "¿qué tacos tienen?": a question about what a category has."""
    return clause.asks and bool(clause.categories) and not clause.items and clause.says(WHAT_WORDS)


def _refuses(clause: _Clause) -> bool:
    """ "no suadero pls", "actually no matcha": "no" right before a product's name."""
    return any(
        isinstance(a, _Other) and a.key in ("no", "nada") and isinstance(b, _Item)
        for a, b in zip(clause.elements, clause.elements[1:], strict=False)
    )


def _definite_before(clause: _Clause) -> bool:
    """ "los de pastor", "the pastor ones": an article right before the name (over "de"/"of")."""
    for element in reversed(clause.elements):
        if not isinstance(element, _Other):
            return False
        if element.key in ("de", "of", "a"):
            continue
        return element.key in DEFINITE
    return False


def _nearest(items: Sequence[_Item], position: int) -> _Item:
    before = [i for i in items if i.name_start < position]
    return before[-1] if before else items[0]


def _parts_after(ordered: List[_Item], item: _Item) -> int:
    """How many parts split off ``item`` follow it already (a new part goes after them)."""
    return sum(1 for other in ordered if other.part_of is item)


def _note_spans(clause: _Clause) -> List[Tuple[int, int]]:
    """Runs of other words that open like a kitchen note ("bien fría", "sin hielo", "extra hot") and
    say something: at least one word that is not a stop word nor about paying or fetching."""
    spans = []
    run: List[_Other] = []

    def close() -> None:
        while run and (run[-1].key in NOT_ITEM_WORDS or run[-1].key in STOP_WORDS - NOTE_OPENERS):
            run.pop()
        content = [w for w in run if w.key not in STOP_WORDS and w.key not in NOT_ITEM_WORDS]
        if run and content and not any(w.key in NOT_ITEM_WORDS for w in run):
            spans.append((run[0].start, run[-1].end))
        run.clear()

    for element in clause.elements:
        if isinstance(element, _Other) and (run or element.key in NOTE_OPENERS):
            if element.key in NOT_ITEM_WORDS and element.key not in NOTE_OPENERS:
                close()
                continue
            run.append(element)
        else:
            close()
    close()
    return spans


def _unknown_after(elements: Sequence[Any], index: int, asked: bool = False) -> Optional[Tuple[int, int]]:
    """The words right after a quantity or "tienen" that stand where a product would: up to four
    (a category name among them in an order: "3 tacos de birria"), over "de"/"of" and articles,
    without stop words at the end, never words about paying or notes. Their element indexes
    (first, after last), or None unless a word there is unknown to the catalog (a question about
    "pan" or "aguas frescas" asks for the menu)."""
    while index < len(elements) and isinstance(elements[index], _Other) and elements[index].key in LEADING:
        index += 1
    first = end = index
    while end < len(elements) and isinstance(elements[end], (_Other, _Category)) and end - first < 4:
        key = elements[end].key if isinstance(elements[end], _Other) else ""
        note = key in NOTE_OPENERS and not (asked and key not in OPTION_OPENERS)  # asked: "hot chocolate"
        if key in NOT_ITEM_WORDS or note or key in NOT_A_COUNT or (end == first and key in STOP_WORDS):
            break
        end += 1
    while end > first and isinstance(elements[end - 1], _Other) and elements[end - 1].key in STOP_WORDS:
        end -= 1
    run = elements[first:end]
    if asked and any(isinstance(w, _Category) for w in run):
        return None
    content = [
        w
        for w in run
        if isinstance(w, _Category) or (w.key.isalpha() and len(w.key) >= 3 and w.key not in STOP_WORDS and not w.known)
    ]
    return (first, end) if content else None


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
    for n in (5, 4, 3, 2, 1):
        keys = tuple(w.key for w in tokens[i : i + n])
        if len(keys) < n or any(k in matches for k in range(i, i + n)):
            continue
        if keys in QUANTITY_PHRASES:
            value = QUANTITY_PHRASES[keys]
        elif n == 1 and keys[0].isdigit():
            value = int(keys[0]) if len(keys[0]) <= 4 else None
        elif all(k.isalpha() and k not in SOME and k not in ORDINAL_WORDS and _number(k) is not None for k in keys):
            value = _number(" ".join(keys))
        elif n == 1 and len(keys[0]) >= 4 and keys[0].isalpha() and keys[0] not in STOP_WORDS:
            value = _SPOKEN.get(sound(keys[0]))
        if value is not None:
            end = i + n
            break
    if value is None:
        return None, i + 1
    if end < len(tokens) and end not in matches and tokens[end].key in DOZEN:
        value, end = value * 12, end + 1
    if end < len(tokens) and tokens[end].key in NOT_A_COUNT and not (value == 1 and end in matches):
        return None, end + 1  # "500 ml", "250 g"; but "una G" is a T-shirt size
    if not 1 <= value <= MAX_QUANTITY:
        return None, end
    article = end == i + 1 and tokens[i].key in ARTICLES
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
                element.used = True
        else:
            if pending:
                element.quantity, element.by_article = pending.value, pending.article
                element.halved = pending.half
                element.cover(pending.start, pending.end)
                pending.used = True
                pending = None
            last = element

"""The message catalogue (comanda/messages.yml), the Rasa domain's responses read outside the chat, and the
languages Comanda speaks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

LANGUAGES = ("es", "en")
CATALOGUE = Path(__file__).resolve().parent / "messages.yml"


@lru_cache(maxsize=1)
def catalogue() -> Dict[str, Dict[str, str]]:
    return yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def domain_responses() -> Dict[str, List[Dict[str, Any]]]:
    """The responses of the Rasa domain (domain/*.yml), where every sentence a customer reads lives."""
    from comanda.settings import setting

    found: Dict[str, List[Dict[str, Any]]] = {}
    for path in sorted((Path(setting("COMANDA_HOME")) / "domain").glob("*.yml")):
        found.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {})
    return found


def response_text(name: str, language: str, **params: Any) -> Optional[str]:
    """A domain response's text in ``language`` with its values filled in, for where the chat is not (the
    command line shows staff what a customer would read); None when the domain has no such response."""
    wanted = {"type": "slot", "name": "language", "value": language_or_default(language)}
    for variation in domain_responses().get(name, []):
        if "text" in variation and "channel" not in variation and wanted in variation.get("condition", []):
            return str(variation["text"]).format(**params)
    return None


def language_or_default(language: Any, default: str = "es") -> str:
    return language if language in LANGUAGES else default


def t(key: str, language: str, **params: Any) -> str:
    """The text for ``key`` in ``language`` with ``{params}`` filled in. Unknown keys are a bug: KeyError."""
    text = catalogue()[key][language_or_default(language)]
    return text.format(**params) if params else text


def join_words(items: List[str], language: str, conjunction: str = "list.and") -> str:
    """ "a, b y c" / "a, b and c" (``conjunction="list.or"``: "a, b o c")."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {t(conjunction, language)} {items[-1]}"

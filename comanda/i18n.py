"""The message catalogue (comanda/messages.yml) and the languages Comanda speaks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List

import yaml

LANGUAGES = ("es", "en")
CATALOGUE = Path(__file__).resolve().parent / "messages.yml"


@lru_cache(maxsize=1)
def catalogue() -> Dict[str, Dict[str, str]]:
    return yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))


def language_or_default(language: Any, default: str = "es") -> str:
    return language if language in LANGUAGES else default


def t(key: str, language: str, **params: Any) -> str:
    """The text for ``key`` in ``language`` with ``{params}`` filled in. Unknown keys are a bug: KeyError."""
    text = catalogue()[key][language_or_default(language)]
    return text.format(**params) if params else text


def join_words(items: List[str], language: str) -> str:
    """ "a, b y c" / "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {t('list.and', language)} {items[-1]}"

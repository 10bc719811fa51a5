"""Training data written by the review inbox: ``data/nlu/<lang>/reviewed.yml`` (Rasa's NLU format, each
block with the ``language`` metadata the language detector learns from) and ``domain/faq_reviewed.yml``
(the answers of FAQ topics owners added). Versioned like the rest of the training data; the next
`comanda train` learns them.

Writers on several processes (back offices, the command line) take one file lock and replace files
atomically, so a reader never sees half a file. An example that is already training data for another
intent, or a message of the held-out sets (tests/nlu, which must never be trained on), is refused.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import yaml

from comanda.errors import InvalidInput
from comanda.i18n import LANGUAGES
from comanda.settings import home

REVIEWED = "reviewed.yml"
FAQ_DOMAIN = "faq_reviewed.yml"
TOPIC = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
# Rasa reads "[text](entity)" / "[text]{...}" in an example as an entity annotation.
ANNOTATION = re.compile(r"\[([^\]]*)\](?=[({\[])")


def data_dir() -> Path:
    return home() / "data"


def domain_dir() -> Path:
    return home() / "domain"


def held_out_dir() -> Path:
    return home() / "tests" / "nlu"


def normalized(text: str) -> str:
    """How examples are compared (as tests/core/test_training_data.py does): case, accents, punctuation aside."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", folded))


def example_line(text: str) -> str:
    """One line of an ``examples: |`` block: no line breaks, no accidental entity annotation."""
    return ANNOTATION.sub(r"(\1)", " ".join(text.split()))


@dataclass
class FaqTopic:
    """A frequent question the owner adds: its phrasings and answer in both languages."""

    topic: str
    examples: Dict[str, List[str]] = field(default_factory=dict)  # {"es": [...], "en": [...]}
    answers: Dict[str, str] = field(default_factory=dict)  # {"es": "...", "en": "..."}

    def check(self) -> None:
        if not TOPIC.match(self.topic):
            raise InvalidInput("a topic is 2–40 lower-case letters, digits or _ (e.g. parking)", field="topic")
        for language in LANGUAGES:
            if not [e for e in self.examples.get(language, []) if e.strip()]:
                raise InvalidInput(f"write at least one way to ask it in {language}", field=f"examples_{language}")
            if not (self.answers.get(language) or "").strip():
                raise InvalidInput(f"write the answer in {language}", field=f"answer_{language}")
            if len(self.answers[language]) > 1000:
                raise InvalidInput("an answer is at most 1,000 characters", field=f"answer_{language}")


@contextmanager
def _locked() -> Iterator[None]:
    path = data_dir() / "nlu" / ".review.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.chmod(draft, 0o644)
    os.replace(draft, path)


def _examples(block: Dict) -> List[str]:
    return [line.strip()[2:] for line in str(block.get("examples") or "").splitlines() if line.strip().startswith("- ")]


def _yaml_files(folder: Path) -> List[Path]:
    return sorted(folder.glob("**/*.yml")) if folder.is_dir() else []


def training_examples() -> Dict[str, Tuple[str, Path]]:
    """Every NLU training example, normalised: (its intent, its file)."""
    found: Dict[str, Tuple[str, Path]] = {}
    for path in _yaml_files(data_dir() / "nlu"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or [] if isinstance(data, dict) else []:
            if "intent" in block:
                for text in _examples(block):
                    found.setdefault(normalized(text), (block["intent"], path))
    return found


def _held_out() -> Set[str]:
    """The held-out sets' messages, normalised, only to refuse training on them (never shown)."""
    texts: Set[str] = set()
    for path in _yaml_files(held_out_dir()):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            texts.update(normalized(str(c.get("text", ""))) for c in data if isinstance(c, dict))
        elif isinstance(data, dict):
            for block in data.get("nlu") or []:
                texts.update(normalized(t) for t in _examples(block))
    return texts


def known_intents() -> Set[str]:
    """What a decision may name: the domain's intents that are learnt from text (those with training
    examples; not the ones only buttons and the back office send), and every FAQ topic with an answer."""
    intents: Set[str] = set()
    topics: Set[str] = set()
    for path in _yaml_files(domain_dir()):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for intent in data.get("intents") or []:
            intents.add(next(iter(intent)) if isinstance(intent, dict) else str(intent))
        topics.update(r.split("/", 1)[1] for r in data.get("responses") or {} if r.startswith("utter_faq/"))
    learnt = {intent for intent, _ in training_examples().values()}
    return {i for i in intents if i in learnt} | {f"faq/{t}" for t in topics}


def add_example(text: str, intent: str, language: str) -> bool:
    """``text`` as an example of ``intent`` in ``data/nlu/<language>/reviewed.yml``; False when it already
    is one. Refused when it is training data of another intent or a held-out message."""
    if language not in LANGUAGES:
        raise InvalidInput(f"no language {language!r}", field="language")
    line = example_line(text)
    key = normalized(line)
    if not key:
        raise InvalidInput("nothing to learn in this message (no words)", field="text")
    with _locked():
        existing = training_examples().get(key)
        if existing is not None:
            if existing[0] == intent:
                return False
            raise InvalidInput(
                f"this sentence is already an example of {existing[0]} in "
                f"{existing[1].relative_to(home()) if existing[1].is_relative_to(home()) else existing[1]}",
                field="intent",
            )
        if key in _held_out():
            raise InvalidInput("this sentence is in the held-out test set (tests/nlu): it must not be trained on")
        _append(language, {intent: [line]})
    return True


def _append(language: str, new: Dict[str, List[str]]) -> None:
    path = data_dir() / "nlu" / language / REVIEWED
    blocks: Dict[str, List[str]] = {}
    if path.exists():
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            blocks.setdefault(block["intent"], []).extend(_examples(block))
    for intent, lines in new.items():
        blocks.setdefault(intent, []).extend(lines)
    out = [
        'version: "3.1"',
        "# Examples owners confirmed or corrected in the review inbox (`comanda review`, /console/review).",
        "nlu:",
    ]
    for intent in sorted(blocks):
        out += [f"- intent: {intent}", "  metadata:", f"    language: {language}", "  examples: |"]
        out += [f"    - {line}" for line in blocks[intent]]
    _write(path, "\n".join(out) + "\n")


def add_faq_topic(faq: FaqTopic) -> None:
    """A new FAQ topic: its phrasings as examples of faq/<topic> in each language, and its answer in both
    languages as ``utter_faq/<topic>`` (domain/faq_reviewed.yml). Live after the next training."""
    faq.check()
    if f"faq/{faq.topic}" in known_intents():
        raise InvalidInput(f"there is a FAQ topic {faq.topic!r} already", field="topic")
    with _locked():
        existing = training_examples()
        held_out = _held_out()
        lines = {language: [example_line(e) for e in faq.examples[language] if e.strip()] for language in LANGUAGES}
        for language_lines in lines.values():
            for line in language_lines:
                if normalized(line) in existing:
                    raise InvalidInput(f"«{line}» is already an example of {existing[normalized(line)][0]}")
                if normalized(line) in held_out:
                    raise InvalidInput(f"«{line}» is in the held-out test set (tests/nlu): write it another way")
        path = domain_dir() / FAQ_DOMAIN
        domain = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        responses = dict((domain or {}).get("responses") or {})
        responses[f"utter_faq/{faq.topic}"] = [
            {
                "condition": [{"type": "slot", "name": "language", "value": language}],
                "text": faq.answers[language].strip(),
            }
            for language in LANGUAGES
        ]
        header = "# FAQ topics owners added in the review inbox; action_answer_faq says these answers as written.\n"
        _write(
            path,
            header + yaml.safe_dump({"version": "3.1", "responses": responses}, allow_unicode=True, sort_keys=True),
        )
        for language in LANGUAGES:
            _append(language, {f"faq/{faq.topic}": lines[language]})

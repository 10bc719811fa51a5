"""Detects whether a message is Spanish or English and emits it as the `language` entity.

It learns from the training data itself: every intent block in data/nlu/<lang>/ carries
``metadata: {language: <lang>}``; spaCy's stop-word lists (shipped with spaCy, no download) add
each language's function words. A naive Bayes model over character n-grams (accents, "ñ", "¿",
typical endings) scores each message; only a confident verdict becomes an entity, so short or
ambiguous messages ("ok", "👍", "2") leave the conversation's remembered language alone.
Product names found earlier in the pipeline (`product` entities: "taro", "latte" read the same in
both languages) are not evidence and are left out; the words around them are.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, METADATA, METADATA_EXAMPLE, METADATA_INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ENTITY = "language"
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def features(text: str, n_min: int, n_max: int) -> Counter:
    """Character n-grams of each lower-cased word, padded with spaces at both ends."""
    grams: Counter = Counter()
    for word in _WORD.findall(text.lower()):
        padded = f" {word} "
        for n in range(n_min, n_max + 1):
            for i in range(len(padded) - n + 1):
                grams[padded[i : i + n]] += 1
    return grams


class NaiveBayesLanguageModel:
    """Multinomial naive Bayes with add-alpha smoothing; serialisable as plain JSON."""

    def __init__(self, counts: Dict[str, Dict[str, int]], docs: Dict[str, int], alpha: float = 0.5) -> None:
        self.counts = counts
        self.docs = docs
        self.alpha = alpha
        self.totals = {lang: sum(c.values()) for lang, c in counts.items()}
        self.vocabulary = len({g for c in counts.values() for g in c})

    @classmethod
    def fit(cls, samples: List[Tuple[str, str]], n_min: int, n_max: int) -> NaiveBayesLanguageModel:
        counts: Dict[str, Counter] = {}
        docs: Counter = Counter()
        for text, lang in samples:
            counts.setdefault(lang, Counter()).update(features(text, n_min, n_max))
            docs[lang] += 1
        return cls({lang: dict(c) for lang, c in counts.items()}, dict(docs))

    def predict(self, grams: Counter, evidence_cap: int) -> Optional[Tuple[str, float]]:
        """(language, confidence), or None when there is nothing to judge.

        Per-n-gram log-likelihoods are averaged and scaled by at most ``evidence_cap`` n-grams, so a
        long message cannot make naive Bayes over-confident and a two-letter one stays uncertain.
        """
        n = sum(grams.values())
        if not n or len(self.counts) < 2:
            return None
        total_docs = sum(self.docs.values())
        scores = {}
        for lang, counts in self.counts.items():
            denom = self.totals[lang] + self.alpha * (self.vocabulary + 1)
            ll = sum(k * math.log((counts.get(g, 0) + self.alpha) / denom) for g, k in grams.items())
            scores[lang] = ll / n * min(n, evidence_cap) + math.log(self.docs[lang] / total_docs)
        best = max(scores, key=scores.__getitem__)
        z = sum(math.exp(s - scores[best]) for s in scores.values())
        return best, 1.0 / z

    def to_json(self) -> Dict[str, Any]:
        return {"counts": self.counts, "docs": self.docs, "alpha": self.alpha}

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> NaiveBayesLanguageModel:
        return cls(data["counts"], data["docs"], data["alpha"])


def _stop_words(language: str) -> List[str]:
    """spaCy's stop words for a language (part of the spaCy package; nothing is downloaded)."""
    import importlib

    try:
        module = importlib.import_module(f"spacy.lang.{language}.stop_words")
    except ImportError:
        return []
    return sorted(module.STOP_WORDS)


def _without_entities(text: str, entities: List[Dict[str, Any]]) -> str:
    for entity in sorted(entities, key=lambda e: e.get("start", 0), reverse=True):
        if entity.get("entity") == "product" and "start" in entity and "end" in entity:
            text = text[: entity["start"]] + " " + text[entity["end"] :]
    return text


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class LanguageDetector(GraphComponent):
    """Emits ``{"entity": "language", "value": "es"|"en"}`` when it is sure of the language."""

    FILE = "language_model.json"

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            "threshold": 0.85,
            "min_ngram": 1,
            "max_ngram": 4,
            "evidence_cap": 24,
            "min_letters": 3,
            "metadata_key": "language",
            "stop_words": True,
        }

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[NaiveBayesLanguageModel] = None,
    ) -> None:
        self.config = config
        self._storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LanguageDetector:
        return cls(config, model_storage, resource)

    def _language_of(self, example: Message) -> Optional[str]:
        metadata = example.get(METADATA) or {}
        for level in (METADATA_EXAMPLE, METADATA_INTENT):
            value = (metadata.get(level) or {}).get(self.config["metadata_key"])
            if value:
                return str(value)
        return None

    def train(self, training_data: TrainingData) -> Resource:
        samples = [
            (ex.get(TEXT), lang)
            for ex in training_data.training_examples
            if ex.get(TEXT) and (lang := self._language_of(ex))
        ]
        if self.config["stop_words"]:
            samples += [(word, lang) for lang in sorted({lang for _, lang in samples}) for word in _stop_words(lang)]
        self.model = NaiveBayesLanguageModel.fit(samples, self.config["min_ngram"], self.config["max_ngram"])
        with self._storage.write_to(self._resource) as directory:
            (directory / self.FILE).write_text(json.dumps(self.model.to_json()), encoding="utf-8")
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LanguageDetector:
        try:
            with model_storage.read_from(resource) as directory:
                model = NaiveBayesLanguageModel.from_json(json.loads((directory / cls.FILE).read_text("utf-8")))
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, model)

    def detect(self, text: str) -> Optional[Tuple[str, float]]:
        if self.model is None or sum(len(w) for w in _WORD.findall(text)) < self.config["min_letters"]:
            return None
        grams = features(text, self.config["min_ngram"], self.config["max_ngram"])
        verdict = self.model.predict(grams, self.config["evidence_cap"])
        if verdict is None or verdict[1] < self.config["threshold"]:
            return None
        return verdict

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            verdict = self.detect(_without_entities(text, message.get(ENTITIES, [])))
            if verdict is None:
                continue
            language, confidence = verdict
            entity = {
                "entity": ENTITY,
                "value": language,
                "start": 0,
                "end": len(text),
                "confidence": round(confidence, 4),
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, message.get(ENTITIES, []) + [entity], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

"""The review inbox in tests: Rasa's parse data as the Rasa server saves it, and a throw-away project
folder (COMANDA_HOME) whose training data and domain a decision may write."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.helpers.paths import ROOT


def parse(
    intent: str,
    confidence: float,
    ranking: Sequence[Tuple[str, float]] = (),
    language: Optional[str] = "es",
    lines: Sequence[Dict[str, Any]] = (),
    unplaced: Sequence[str] = (),
) -> Dict[str, Any]:
    """Parse data shaped as Rasa's UserUttered keeps it (intent, ranking, entities)."""
    entities: List[Dict[str, Any]] = [{"entity": "order_line", "value": dict(line)} for line in lines]
    entities += [{"entity": "unplaced", "value": {"text": word, "suggestions": []}} for word in unplaced]
    if language:
        entities.append({"entity": "language", "value": language})
    ranked = list(ranking) or [(intent, confidence)]
    return {
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranked],
        "entities": entities,
    }


def project_copy(tmp_path: Path) -> Path:
    """data/, domain/ and the held-out sets' folder of this checkout, copied to a folder of its own."""
    home = tmp_path / "home"
    shutil.copytree(ROOT / "data", home / "data", ignore=shutil.ignore_patterns("demo"))
    shutil.copytree(ROOT / "domain", home / "domain")
    shutil.copytree(ROOT / "tests" / "nlu", home / "tests" / "nlu")
    shutil.copy(ROOT / "config.yml", home / "config.yml")
    return home

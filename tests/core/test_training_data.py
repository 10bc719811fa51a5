"""The held-out NLU set (tests/nlu/) is never trained on: no training example is one of its messages."""

import re
import unicodedata
from pathlib import Path

import yaml

from tests.helpers.paths import ROOT


def normalized(text: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(re.findall(r"\w+", folded))


def examples(folder: Path):
    for path in sorted(folder.glob("**/*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # tests/nlu/order_lines.yml: labelled order lines
            yield from ((path, case["text"]) for case in data)
            continue
        for block in (data or {}).get("nlu") or []:
            for line in block.get("examples", "").splitlines():
                if line.strip().startswith("- "):
                    yield path, line.strip()[2:]


def test_no_held_out_message_is_in_the_training_data():
    held_out = {normalized(text) for _, text in examples(ROOT / "tests" / "nlu")}
    leaked = [
        f"{path.relative_to(ROOT)}: {text}"
        for path, text in examples(ROOT / "data" / "nlu")
        if normalized(text) in held_out
    ]
    assert leaked == []


def test_every_labelled_order_line_message_is_in_the_held_out_intents():
    intents = {normalized(text) for path, text in examples(ROOT / "tests" / "nlu") if path.name != "order_lines.yml"}
    labelled = [text for path, text in examples(ROOT / "tests" / "nlu") if path.name == "order_lines.yml"]
    assert labelled and all(normalized(text) in intents for text in labelled)

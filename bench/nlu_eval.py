"""Evaluate the NLU on the held-out set (tests/nlu/, never trained on), per language (`make eval`).

For each language it reports intent accuracy (FAQ topics count as ``faq/<topic>``, as the
ResponseSelector picks them), order-line F1 over (SKU, quantity) items, and order-line exact match:
a message is right when its items, as SKU and quantity, are exactly the labelled ones. Rasa's own
reports (intent report, confusion matrix, histogram, errors) go to ``<out>/<lang>/``. The model is
read with nlu_components.parse, the path ``comanda parse`` and the bot take.

    python bench/nlu_eval.py [--model models/comanda.tar.gz] [--out reports/nlu/comanda] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlu_components.parse import Reader, logs_to_stderr  # noqa: E402 - after the path is set

HELD_OUT = ROOT / "tests" / "nlu"
LANGUAGES = ("es", "en")
Item = Tuple[str, int]


def nlu_files() -> List[Tuple[Path, List[Dict[str, Any]]]]:
    """The held-out Rasa NLU files (order_lines.yml, the labelled order lines, is not one) and their blocks."""
    found = []
    for path in sorted(HELD_OUT.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("nlu"):
            found.append((path, data["nlu"]))
    return found


def intent_examples() -> Dict[str, List[Tuple[str, str]]]:
    """(text, intent) per language from every held-out NLU file."""
    examples: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for _, blocks in nlu_files():
        for block in blocks:
            if "intent" not in block:
                continue
            language = (block.get("metadata") or {}).get("language")
            for line in block["examples"].splitlines():
                if line.strip().startswith("- "):
                    examples[language].append((line.strip()[2:].strip(), block["intent"]))
    return examples


def files_of(language: str, folder: Path) -> Path:
    """The held-out NLU files of one language, copied alone into a folder for Rasa's evaluation."""
    for path, blocks in nlu_files():
        blocks = [b for b in blocks if (b.get("metadata") or {}).get("language") == language]
        if blocks:
            (folder / path.name).write_text(
                yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True), encoding="utf-8"
            )
    return folder


def predicted_intent(parse: Dict[str, Any]) -> str:
    intent = (parse.get("intent") or {}).get("name") or ""
    if intent == "faq":
        key = (((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}).get(
            "intent_response_key"
        )
        return key or intent
    return intent


def f1(expected: Counter, predicted: Counter) -> Tuple[int, int, int]:
    hits = sum((expected & predicted).values())
    return hits, sum(predicted.values()), sum(expected.values())


def evaluate(reader: Reader, out: Path) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    examples = intent_examples()
    labelled = yaml.safe_load((HELD_OUT / "order_lines.yml").read_text(encoding="utf-8"))
    loop = asyncio.new_event_loop()
    from rasa.nlu.test import run_evaluation

    for language in LANGUAGES:
        parses = [loop.run_until_complete(reader.agent.parse_message(text)) for text, _ in examples[language]]
        wrong = [
            (text, intent, predicted_intent(p))
            for (text, intent), p in zip(examples[language], parses, strict=False)
            if predicted_intent(p) != intent
        ]
        cases = [case for case in labelled if case["language"] == language]
        hits = predicted_total = expected_total = exact = 0
        misses = []
        for case, got in zip(cases, reader.read([c["text"] for c in cases]), strict=False):
            expected = Counter((i["sku"], int(i["quantity"])) for i in case["items"])
            predicted = Counter((i["sku"], int(i["quantity"])) for i in got["items"])
            h, p, e = f1(expected, predicted)
            hits, predicted_total, expected_total = hits + h, predicted_total + p, expected_total + e
            if expected == predicted:
                exact += 1
            else:
                misses.append(
                    {
                        "text": case["text"],
                        "expected": sorted(expected.elements()),
                        "predicted": sorted(predicted.elements()),
                    }
                )
        precision = hits / predicted_total if predicted_total else 0.0
        recall = hits / expected_total if expected_total else 0.0
        results[language] = {
            "intent_examples": len(parses),
            "intent_accuracy": round(1 - len(wrong) / len(parses), 4) if parses else None,
            "intent_errors": [{"text": t, "expected": e, "predicted": p} for t, e, p in wrong],
            "order_line_messages": len(cases),
            "order_line_exact_match": round(exact / len(cases), 4) if cases else None,
            "order_line_precision": round(precision, 4),
            "order_line_recall": round(recall, 4),
            "order_line_f1": round(2 * precision * recall / (precision + recall), 4) if hits else 0.0,
            "order_line_errors": misses,
        }
        with tempfile.TemporaryDirectory() as folder:
            (out / language).mkdir(parents=True, exist_ok=True)
            loop.run_until_complete(
                run_evaluation(
                    str(files_of(language, Path(folder))),
                    reader.agent.processor,
                    output_directory=str(out / language),
                    errors=True,
                )
            )
    loop.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "comanda.tar.gz")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "nlu" / "comanda")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    logs_to_stderr()
    results = evaluate(Reader(args.model), args.out)
    for language, r in results.items():
        print(
            f"{language}: intent accuracy {r['intent_accuracy']:.1%} ({r['intent_examples']} messages), "
            f"order lines exact match {r['order_line_exact_match']:.1%} ({r['order_line_messages']} messages), "
            f"order-line F1 {r['order_line_f1']:.3f} "
            f"(P {r['order_line_precision']:.3f}, R {r['order_line_recall']:.3f})"
        )
        for error in r["intent_errors"]:
            print(f"    intent  {error['text']!r}: expected {error['expected']}, got {error['predicted']}")
        for error in r["order_line_errors"]:
            print(f"    lines   {error['text']!r}: expected {error['expected']}, got {error['predicted']}")
    print(f"Rasa's reports: {args.out}/<language>/")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

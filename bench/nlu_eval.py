"""Evaluate the NLU on a held-out set (default tests/nlu/, never trained on), per language (`make eval`).

For each language it reports intent accuracy (FAQ topics count as ``faq/<topic>``, as the
ResponseSelector picks them), per-intent precision and recall, order-line F1 over (SKU, quantity)
items, and order-line exact match: a message is right when its items, as SKU and quantity, are
exactly the labelled ones. It writes ``<out>/<lang>/report.html`` (the figures, the confusion matrix
as an image, every miss) and ``<out>/index.html``; Rasa's own reports (intent report, confusion
matrix, histogram, errors) go to ``<out>/<lang>/`` too. The model is read with nlu_components.parse,
the path ``comanda parse`` and the bot take.

A held-out folder holds Rasa NLU files (``nlu:`` blocks; the language from each block's
``metadata: {language: ...}``, else from the file name, "ordering_es.yml") and, optionally, files
of labelled order lines (a list of ``{text, language, items: [{sku, quantity}]}``, like
tests/nlu/order_lines.yml). Only the folder's own files are read, not its subfolders.

    python bench/nlu_eval.py [--held-out tests/nlu] [--model models/comanda.tar.gz]
                             [--out reports/nlu/comanda] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import io
import json
import re
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

from nlu_components.parse import Reader, logs_to_stderr

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = ROOT / "tests" / "nlu"
LANGUAGES = ("es", "en")
Item = Tuple[str, int]


@dataclass
class HeldOut:
    """A held-out folder, read: intent examples and labelled order lines per language."""

    folder: Path
    examples: Dict[str, List[Tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    blocks: Dict[Tuple[str, str], List[Dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    order_lines: Dict[str, List[Dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def read(cls, folder: Path) -> HeldOut:
        held_out = cls(folder)
        for path in sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            hint = language_of_name(path)
            if isinstance(data, list):
                for case in data:
                    if isinstance(case, dict) and "text" in case and "items" in case:
                        held_out.order_lines[case.get("language") or hint or "es"].append(case)
            elif isinstance(data, dict):
                for block in data.get("nlu") or []:
                    if "intent" not in block:
                        continue
                    language = (block.get("metadata") or {}).get("language") or hint
                    if language not in LANGUAGES:
                        raise SystemExit(f"error: {path}: intent {block['intent']} has no language (metadata)")
                    held_out.blocks[(path.name, language)].append(block)
                    held_out.examples[language].extend((text, block["intent"]) for text in example_texts(block))
        return held_out

    def nlu_files(self, language: str, folder: Path) -> Path:
        """The language's NLU blocks, written alone into ``folder`` for Rasa's own evaluation."""
        for (name, block_language), blocks in self.blocks.items():
            if block_language == language:
                (folder / name).write_text(
                    yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True), encoding="utf-8"
                )
        return folder


def language_of_name(path: Path) -> Optional[str]:
    """ "es.yml", "ordering_en.yml", "fresh-es.yml" → the language the name says, if any."""
    words = re.split(r"[^a-z]+", path.stem.lower())
    found = [w for w in words if w in LANGUAGES]
    return found[-1] if found else None


def example_texts(block: Dict[str, Any]) -> List[str]:
    examples = block.get("examples") or []
    if isinstance(examples, str):
        return [line.strip()[2:].strip() for line in examples.splitlines() if line.strip().startswith("- ")]
    return [str(e.get("text") if isinstance(e, dict) else e).strip() for e in examples]


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


def per_intent(pairs: Iterable[Tuple[str, str]]) -> Dict[str, Dict[str, Any]]:
    """Precision, recall and support per intent from (expected, predicted) pairs."""
    pairs = list(pairs)
    table = {}
    for intent in sorted({e for e, _ in pairs} | {p for _, p in pairs}):
        hits = sum(1 for e, p in pairs if e == p == intent)
        predicted = sum(1 for _, p in pairs if p == intent)
        support = sum(1 for e, _ in pairs if e == intent)
        table[intent] = {
            "precision": round(hits / predicted, 4) if predicted else None,
            "recall": round(hits / support, 4) if support else None,
            "support": support,
        }
    return table


def evaluate(reader: Reader, held_out: HeldOut, out: Path) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    loop = asyncio.new_event_loop()
    from rasa.nlu.test import run_evaluation

    for language in LANGUAGES:
        examples = held_out.examples.get(language, [])
        parses = [loop.run_until_complete(reader.agent.parse_message(text)) for text, _ in examples]
        pairs = [(intent, predicted_intent(p)) for (_, intent), p in zip(examples, parses, strict=True)]
        wrong = [
            {
                "text": text,
                "expected": expected,
                "predicted": predicted,
                "confidence": round(float((p.get("intent") or {}).get("confidence") or 0), 3),
            }
            for (text, _), (expected, predicted), p in zip(examples, pairs, parses, strict=True)
            if expected != predicted
        ]
        cases = held_out.order_lines.get(language, [])
        hits = predicted_total = expected_total = exact = 0
        misses = []
        for case, got in zip(cases, reader.read([c["text"] for c in cases]), strict=True):
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
            "per_intent": per_intent(pairs),
            "intent_errors": wrong,
            "order_line_messages": len(cases),
            "order_line_exact_match": round(exact / len(cases), 4) if cases else None,
            "order_line_precision": round(precision, 4),
            "order_line_recall": round(recall, 4),
            "order_line_f1": round(2 * precision * recall / (precision + recall), 4) if hits else 0.0,
            "order_line_errors": misses,
        }
        folder = out / language
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.html").write_text(
            html_report(language, results[language], pairs, held_out.folder, reader.model_name), encoding="utf-8"
        )
        if examples:
            with tempfile.TemporaryDirectory() as tmp:
                loop.run_until_complete(
                    run_evaluation(
                        str(held_out.nlu_files(language, Path(tmp))),
                        reader.agent.processor,
                        output_directory=str(folder),
                        errors=True,
                    )
                )
    loop.close()
    (out / "index.html").write_text(html_index(results, held_out.folder, reader.model_name), encoding="utf-8")
    return results


# --- the HTML report -------------------------------------------------------------------------------

STYLE = """<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}th{background:#f4f4f4}.num{text-align:right}
.bad{color:#b00020}</style>"""


def percent(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1%}"


def confusion_png(pairs: List[Tuple[str, str]]) -> str:
    """The confusion matrix (rows: expected, columns: predicted) as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({e for e, _ in pairs} | {p for _, p in pairs})
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for expected, predicted in pairs:
        counts[index[expected]][index[predicted]] += 1
    size = max(6.0, 0.38 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("expected")
    for row, values in enumerate(counts):
        for column, value in enumerate(values):
            if value:
                colour = "white" if value > max(map(max, counts)) / 2 else "black"
                axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def html_report(language: str, result: Dict[str, Any], pairs: List[Tuple[str, str]], folder: Path, model: str) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(intent)}</td><td class=num>{percent(r['precision'])}</td>"
        f"<td class=num>{percent(r['recall'])}</td><td class=num>{r['support']}</td></tr>"
        for intent, r in result["per_intent"].items()
    )
    intent_misses = "".join(
        f"<tr><td>{e(m['text'])}</td><td>{e(m['expected'])}</td><td class=bad>{e(m['predicted'])}</td>"
        f"<td class=num>{m['confidence']}</td></tr>"
        for m in result["intent_errors"]
    )
    line_misses = "".join(
        f"<tr><td>{e(m['text'])}</td><td>{e(str(m['expected']))}</td><td class=bad>{e(str(m['predicted']))}</td></tr>"
        for m in result["order_line_errors"]
    )
    matrix = f'<img alt="confusion matrix" src="data:image/png;base64,{confusion_png(pairs)}">' if pairs else ""
    return f"""<!doctype html><html lang=en><meta charset=utf-8><title>NLU evaluation: {language}</title>{STYLE}
<h1>NLU evaluation, {language}</h1>
<p>Model {e(model)} on the held-out set {e(str(folder))}.</p>
<table><tr><th>intent accuracy</th><td class=num>{percent(result["intent_accuracy"])}</td>
<td>{result["intent_examples"]} messages, {len(result["intent_errors"])} wrong</td></tr>
<tr><th>order lines exact match (SKU and quantity)</th><td class=num>{percent(result["order_line_exact_match"])}</td>
<td>{result["order_line_messages"]} messages, {len(result["order_line_errors"])} wrong</td></tr>
<tr><th>order-line F1</th><td class=num>{result["order_line_f1"]:.3f}</td>
<td>precision {result["order_line_precision"]:.3f}, recall {result["order_line_recall"]:.3f}</td></tr></table>
<h2>Confusion matrix</h2>{matrix}
<h2>Per intent</h2><table><tr><th>intent</th><th>precision</th><th>recall</th><th>messages</th></tr>{rows}</table>
<h2>Intent misses</h2><table><tr><th>message</th><th>expected</th><th>predicted</th><th>confidence</th></tr>
{intent_misses}</table>
<h2>Order-line misses</h2><table><tr><th>message</th><th>expected</th><th>read</th></tr>{line_misses}</table>
</html>
"""


def html_index(results: Dict[str, Dict[str, Any]], folder: Path, model: str) -> str:
    rows = "".join(
        f'<tr><td><a href="{language}/report.html">{language}</a></td>'
        f"<td class=num>{percent(r['intent_accuracy'])}</td>"
        f"<td class=num>{percent(r['order_line_exact_match'])}</td></tr>"
        for language, r in results.items()
    )
    return f"""<!doctype html><html lang=en><meta charset=utf-8><title>NLU evaluation</title>{STYLE}
<h1>NLU evaluation</h1><p>Model {html.escape(model)} on {html.escape(str(folder))}.</p>
<table><tr><th>language</th><th>intent accuracy</th><th>order lines exact match</th></tr>{rows}</table></html>
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--held-out", type=Path, default=HELD_OUT, help="held-out folder (default: tests/nlu)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "comanda.tar.gz")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "nlu" / "comanda")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    held_out = HeldOut.read(args.held_out)
    if not held_out.examples and not held_out.order_lines:
        raise SystemExit(f"error: no held-out NLU examples or order lines in {args.held_out}")
    logs_to_stderr()
    results = evaluate(Reader(args.model), held_out, args.out)
    for language, r in results.items():
        print(
            f"{language}: intent accuracy {percent(r['intent_accuracy'])} ({r['intent_examples']} messages), "
            f"order lines exact match {percent(r['order_line_exact_match'])} ({r['order_line_messages']} messages), "
            f"order-line F1 {r['order_line_f1']:.3f} "
            f"(P {r['order_line_precision']:.3f}, R {r['order_line_recall']:.3f})"
        )
        for error in r["intent_errors"]:
            print(f"    intent  {error['text']!r}: expected {error['expected']}, got {error['predicted']}")
        for error in r["order_line_errors"]:
            print(f"    lines   {error['text']!r}: expected {error['expected']}, got {error['predicted']}")
    print(f"reports: {args.out}/index.html")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where things are: the repository's root and the files the tests read from it or write to it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_CATALOG = ROOT / "data" / "demo" / "catalog.yml"
WHATSAPP_FIXTURES = ROOT / "tests" / "fixtures" / "whatsapp"  # real webhook payloads (SOURCES.md)
SCREENSHOTS = ROOT / "reports" / "screenshots"

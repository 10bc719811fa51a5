"""What the tracker store's tests save: a domain with the one slot Comanda's conversations always set."""

from __future__ import annotations

from rasa.shared.core.domain import Domain  # the Rasa venv only: its tests alone import this module

DOMAIN = Domain.from_yaml("""
slots:
  language:
    type: text
    mappings: [{type: custom}]
""")

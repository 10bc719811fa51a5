import re
from pathlib import Path

from comanda.settings import SETTINGS, setting

README = Path(__file__).resolve().parents[2] / "README.md"


def test_environment_wins_over_default(monkeypatch):
    monkeypatch.setenv("COMANDA_DEFAULT_STORE", "roma")
    assert setting("COMANDA_DEFAULT_STORE") == "roma"
    monkeypatch.delenv("COMANDA_DEFAULT_STORE")
    assert setting("COMANDA_DEFAULT_STORE") == "centro"


def test_default_database_is_sqlite_under_var(monkeypatch, tmp_path):
    monkeypatch.delenv("COMANDA_DATABASE_URL", raising=False)
    monkeypatch.setenv("COMANDA_HOME", str(tmp_path))
    assert setting("COMANDA_DATABASE_URL") == f"sqlite:///{tmp_path}/var/comanda.db"


def test_generated_secret_is_stable_and_private(monkeypatch, tmp_path):
    monkeypatch.delenv("COMANDA_RASA_TOKEN", raising=False)
    monkeypatch.setenv("COMANDA_HOME", str(tmp_path))
    first = setting("COMANDA_RASA_TOKEN")
    assert len(first) >= 32 and first == setting("COMANDA_RASA_TOKEN")
    assert (tmp_path / "var/secrets/rasa-token").stat().st_mode & 0o077 == 0


def test_readme_documents_every_setting():
    documented = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", README.read_text(encoding="utf-8")))
    assert set(SETTINGS) <= documented, f"settings missing from README: {set(SETTINGS) - documented}"

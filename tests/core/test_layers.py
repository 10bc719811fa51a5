"""The layer contracts (pyproject.toml, `lint-imports` in `make lint`) hold on this tree and catch a
breach: a copy of the packages with one forbidden import added fails, naming the broken contract."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("comanda", "actions", "connectors", "integrations", "backoffice", "nlu_components", "cli")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the packages under ``tree`` (found first on the path, before the installed ones)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the Python packages and the contracts."""
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


def test_the_contracts_hold_on_this_tree(tree):
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("comanda/services/breach.py", "import rasa_sdk", "The core imports no outer package"),
        ("comanda/services/breach.py", "from sanic import Sanic", "The core imports no outer package"),
        ("comanda/breach.py", "import stripe", "The core imports no outer package"),
        ("comanda/breach.py", "from integrations.payments import payment_provider", "The core imports no outer"),
        ("connectors/breach.py", "from cli.main import main", "Only the command line imports the command line"),
        ("integrations/breach.py", "import actions.menu", "Adapters serve the core"),
        ("actions/breach.py", "import connectors.rest", "independent of one another"),
        ("backoffice/breach.py", "from rasa.core.agent import Agent", "does not import Rasa"),
        ("nlu_components/breach.py", "import satcfdi", "does not import what only the actions venv has"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree, module, line, contract):
    breach = tree / module
    breach.write_text(f'"""A deliberate breach."""\n\n{line}\n')
    try:
        done = lint_imports(tree)
    finally:
        breach.unlink()
    assert done.returncode == 1, done.stdout[-3000:]
    summary = " ".join(done.stdout.split("Contracts:")[0].split())  # names wrap at 80 columns
    broken = [name.split(" KEPT ")[-1] for name in summary.split(" BROKEN")[:-1]]
    assert any(contract in name for name in broken), done.stdout[-3000:]

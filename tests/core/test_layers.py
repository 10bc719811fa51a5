"""The layer contracts (pyproject.toml, `lint-imports` in `make lint`) hold on this tree and catch a
breach: a copy of the packages with one forbidden import added fails, naming the broken contract. And the
tests' own layering: what test modules share lives in tests/helpers/, never in another test module."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.helpers.paths import ROOT

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


def imports_outside_the_helpers(relative: Path, source: str) -> List[str]:
    """What a module under tests/ (``relative`` to the root) imports from ``tests`` other than
    ``tests.helpers…``, relative imports resolved: another test module, a conftest, a package of tests."""
    package = list(relative.with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(source, str(relative))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = [f"{module}.{alias.name}" if module == "tests" else module for alias in node.names]
        else:
            continue
        found += [
            f"{relative}:{node.lineno} imports {name}"
            for name in dict.fromkeys(names)
            if name.split(".")[0] == "tests" and name.split(".")[:2] != ["tests", "helpers"]
        ]
    return found


def test_test_modules_share_only_through_the_helpers():
    """No test module, conftest or helper imports a test module or a conftest: what tests share lives in
    tests/helpers/, and fixtures reach other directories through the top conftest's ``pytest_plugins``."""
    breaches = [
        found
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for found in imports_outside_the_helpers(path.relative_to(ROOT), path.read_text())
    ]
    assert breaches == [], "\n".join(breaches)


@pytest.mark.parametrize(
    ("line", "breach"),
    [
        ("from tests.core.test_reservations import run_together", True),
        ("from tests.conftest import free_port", True),
        ("import tests.e2e.conftest", True),
        ("from tests import conftest", True),
        ("from .test_payments import place", True),
        ("from ..conftest import ROOT", True),
        ("from tests.helpers.waiting import wait_for", False),
        ("from tests import helpers", False),
        ("import tests.helpers.net", False),
        ("from ..helpers.paths import ROOT", False),
        ("from comanda.tests import anything", False),
    ],
)
def test_the_helpers_rule_tells_a_shared_helper_from_a_test_module(line, breach):
    assert bool(imports_outside_the_helpers(Path("tests/core/test_x.py"), f"{line}\n")) is breach

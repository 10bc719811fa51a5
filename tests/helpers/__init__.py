"""What test modules share, each module named by what it is (a test module never imports another test module
nor a conftest: tests/core/test_layers.py checks it). Fixtures defined here reach every directory through the
top conftest's ``pytest_plugins``."""

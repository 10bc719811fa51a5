"""Comanda's core: the shared SQL store, business services and the `comanda` command line.

This package imports neither Rasa nor vendor SDKs, so both virtual environments can install it.
"""

__version__ = "0.1.0"

"""The `comanda` command line: the composition root that wires the core to its adapters.

The core (``comanda``) never imports the adapters (``integrations``); the command line does, which is
why it lives outside the core.
"""

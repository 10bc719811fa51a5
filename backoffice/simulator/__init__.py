"""The WhatsApp simulator: a local stand-in for Meta (a chat page and a fake Cloud API).

Mounted at /simulator when COMANDA_SIMULATOR=1, so nobody needs a Meta account to talk to the bot.
This package imports nothing itself, so `backoffice.simulator.payloads` loads in either environment.
"""

"""Rasa SDK actions: thin. Each reads the tracker, calls a comanda service, dispatches responses."""

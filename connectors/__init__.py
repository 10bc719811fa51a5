"""Rasa server extensions: input/output channels and the tracker store on Comanda's database."""

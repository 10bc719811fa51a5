"""Custom Rasa NLU components (they run in the Rasa server's environment)."""

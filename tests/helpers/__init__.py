"""Helpers shared by several test packages (never a test module importing another)."""

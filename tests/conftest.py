"""pytest configuration: helpers live in tests/helpers.py, imported where used."""

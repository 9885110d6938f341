"""Pure-Python heart of Phone Home Guard: models, parsers, analysis (no Home Assistant import)."""

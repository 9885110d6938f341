"""Home Assistant tests for Phone Home Guard."""

"""Tests of the parsers and address tables in custom_components/phonehome/core."""

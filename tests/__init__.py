"""Tests for Phone Home Guard."""

"""Constants for Phone Home Guard."""

from typing import Final

DOMAIN: Final = "phonehome"

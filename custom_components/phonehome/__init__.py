"""Phone Home Guard: see which internet hosts each LAN device talks to."""

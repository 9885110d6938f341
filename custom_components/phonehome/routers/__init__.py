"""Router clients: one per router kind, behind the Router protocol (no Home Assistant import)."""

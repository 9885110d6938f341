"""Re-implementations of router-side code, to feed the parsers what real routers produce."""

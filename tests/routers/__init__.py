"""Router clients against emulators of their APIs."""

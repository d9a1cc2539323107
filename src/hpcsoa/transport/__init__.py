"""transport layer (see README layer diagram)."""

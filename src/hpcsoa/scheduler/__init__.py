"""scheduler layer (see README layer diagram)."""

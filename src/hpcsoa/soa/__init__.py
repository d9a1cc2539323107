"""soa layer (see README layer diagram)."""

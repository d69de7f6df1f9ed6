"""Signed catalogs: models by name and version (DESIGN §3)."""

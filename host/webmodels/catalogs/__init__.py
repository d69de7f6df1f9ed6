"""Signed catalogs: models by name and version (docs/design.md#names-versions-and-sources)."""

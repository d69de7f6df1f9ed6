"""Model names, versions and ranges (docs/design.md#names-versions-and-sources)."""

"""Model names, versions and ranges (DESIGN §3)."""

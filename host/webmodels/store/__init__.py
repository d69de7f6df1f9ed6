"""The content-addressed model store (``store-v1``): blobs by SHA-256 plus a SQLite index."""

from webmodels.store.store import Store

__all__ = ["Store"]

"""The content-addressed model store (``store-v2``): files by SHA-256, each a recipe of
segments or a whole blob, plus a SQLite index."""

from webmodels.store.store import Store

__all__ = ["Store"]

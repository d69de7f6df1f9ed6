"""webmodels: one shared, privacy-partitioned store of AI models for the web."""

# Written here, not read with importlib.metadata: that import and the scan of the
# installed distributions cost a browser-started host about a tenth of its start
# (tests/test_start_imports.py keeps it equal to pyproject.toml's version).
__version__ = "0.1.0"

PROTOCOL_VERSION = 1
STORE_LAYOUT = "store-v2"  # the store folder; store/layout.py moves a store-v1 to it
STORE_LAYOUT_V1 = "store-v1"
NATIVE_HOST_NAME = "org.webmodels.host"

__all__ = ["NATIVE_HOST_NAME", "PROTOCOL_VERSION", "STORE_LAYOUT", "STORE_LAYOUT_V1", "__version__"]

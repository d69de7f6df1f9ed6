"""webmodels: one shared, privacy-partitioned store of AI models for the web."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("webmodels")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

PROTOCOL_VERSION = 1
STORE_LAYOUT = "store-v1"
NATIVE_HOST_NAME = "org.webmodels.host"

__all__ = ["NATIVE_HOST_NAME", "PROTOCOL_VERSION", "STORE_LAYOUT", "__version__"]

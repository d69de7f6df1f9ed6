"""OCI registries as model sources: ``webmodels pull oci://REGISTRY/REPO:TAG`` and
``webmodels push SHA|NAME oci://…``.

This package owns the OCI side only: parsing references (`reference`), the registry
credentials the user keeps in Docker/ORAS ``config.json`` (`credentials`), the
``WWW-Authenticate`` challenge (`auth`), the distribution HTTP API (`client`), the
artifact layout (`artifact`), and pulling (`pull`) and pushing (`push`). It is reached
from the CLI only: pages cannot name an OCI source (their model URLs are http(s)).
"""

from support.registry import auth_registry, registry

__all__ = ["auth_registry", "registry"]

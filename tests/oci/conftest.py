from support.registry import auth_registry, registry, token_registry

__all__ = ["auth_registry", "registry", "token_registry"]

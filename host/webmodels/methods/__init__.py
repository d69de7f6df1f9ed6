"""Protocol method handlers, one module per noun; each exposes ``register(dispatcher, host)``."""

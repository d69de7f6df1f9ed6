"""Limits and switches of the session runtime, from the ``[sessions]`` table of the
config file (read once at start; see README, "Sessions")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from webmodels.errors import HostError

GIB = 1 << 30


def default_worker_memory() -> int:
    """Half of the machine's memory, at least 1 GiB: a model may use that much heap."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 4 * GIB
    return max(GIB, total // 2)


@dataclass(frozen=True, slots=True)
class SessionSettings:
    worker_memory_bytes: int = 0  # heap limit of the runtime worker; 0: the default above
    create_timeout_s: float = 300.0  # building a session (a TensorRT engine takes minutes)
    run_timeout_s: float = 60.0  # one sessions.run; past it the worker is stopped
    idle_s: float = 300.0  # a session unused this long is unloaded
    max_per_partition: int = 4
    max_total: int = 16
    max_concurrent_calls: int = 4  # below the request pool (8), so others still get served
    max_model_bytes: int = 4 * GIB
    max_nodes: int = 500_000
    max_tensor_bytes: int = 8 * GIB  # one declared tensor
    background_compile: bool = True
    background_delay_s: float = 3.0  # after a download, let the page's own calls go first
    background_idle_s: float = 5.0  # and only once no page request came for this long
    # A session of a model larger than this (graph and external data) is built without
    # writing ONNX Runtime's optimized copy while the page waits; the background
    # compiler saves it afterwards (runtime/loader.py).
    compile_later_bytes: int = 256 << 20

    @property
    def memory_limit(self) -> int:
        return self.worker_memory_bytes or default_worker_memory()

    @classmethod
    def from_config(cls, extra: Mapping[str, Any]) -> SessionSettings:
        table = extra.get("sessions", {})
        if not isinstance(table, Mapping):
            raise HostError("bad_request", "config key 'sessions' must be a table")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in table.items():
            spec = known.get(name)
            if spec is None:
                raise HostError("bad_request", f"unknown config key sessions.{name}")
            values[name] = _typed(name, value, type(getattr(cls(), name)))
        return cls(**values)


def _typed(name: str, value: object, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        if kind is int and float(value).is_integer():
            return int(value)
        if kind is float:
            return float(value)
    raise HostError("bad_request", f"config key sessions.{name} must be a {kind.__name__} ≥ 0")

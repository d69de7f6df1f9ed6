"""What the session manager (runtime/sessions.py) keeps per open session, and what
``sessions.create`` answers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from webmodels.runtime.client import WorkerProcess
from webmodels.runtime.loader import SessionSpec


@dataclass(slots=True)
class Session:
    id: str
    partition: str
    spec: SessionSpec
    provider: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    worker: WorkerProcess | None
    last_used: float
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class Created:
    session_id: str
    provider: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    compiled_cache_hit: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "provider": self.provider,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "compiled_cache_hit": self.compiled_cache_hit,
        }

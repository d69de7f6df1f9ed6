"""Session outputs too big for one reply frame (1 MiB host→browser, base64 on top).

`sessions.run` keeps such an output here and answers ``{type, dims, ref, size}``; the
page then reads it with `sessions.output` in chunks, or at loopback speed through
`sessions.output_open` (loopback.py). An output belongs to the partition that ran the
session: another partition gets the same `not_found` as for a ref never issued.
Bounded: outputs expire after a while; a partition's new output evicts only that
partition's oldest ones (issue 11, hole 15: evicting any partition's would let one site
destroy, and so detect, another's), and the host-wide ceiling answers exactly like the
partition's own limit (`too_large`, the same message, no figures).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from webmodels.errors import HostError

OUTPUT_TTL_S = 120.0
MAX_HELD_BYTES = 512 << 20  # all partitions together
MAX_PARTITION_BYTES = 192 << 20  # one partition (a whole run's outputs fit)
NOT_FOUND = "no such output (read already expired, or never produced for this site)"
TOO_LARGE = (
    "the host cannot keep this output for this site now; read or let expire the ones it "
    "holds, or ask for smaller outputs"
)


@dataclass(frozen=True, slots=True)
class _Held:
    owner: str
    data: bytes
    expires: float


class OutputStore:
    def __init__(
        self,
        *,
        ttl_s: float = OUTPUT_TTL_S,
        max_bytes: int = MAX_HELD_BYTES,
        max_partition_bytes: int = MAX_PARTITION_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.max_partition_bytes = max_partition_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._bytes = 0

    def put(self, owner: str, data: bytes) -> str:
        """Keep `data` for `owner` (a partition key); its ref. Makes room by dropping
        the owner's oldest outputs, never another partition's."""
        if len(data) > min(self.max_bytes, self.max_partition_bytes):
            raise HostError("too_large", TOO_LARGE)
        ref = secrets.token_hex(16)
        with self._lock:
            self._expire(self._clock())
            mine = [r for r, h in self._held.items() if h.owner == owner]  # oldest first
            held = sum(len(self._held[r].data) for r in mine)
            while mine and (
                held + len(data) > self.max_partition_bytes
                or self._bytes + len(data) > self.max_bytes
            ):
                held -= self._drop(mine.pop(0))
            if self._bytes + len(data) > self.max_bytes:
                raise HostError("too_large", TOO_LARGE)  # the same as the partition's limit
            self._held[ref] = _Held(owner, data, self._clock() + self.ttl_s)
            self._bytes += len(data)
        return ref

    def get(self, ref: str, owner: str) -> bytes:
        with self._lock:
            self._expire(self._clock())
            held = self._held.get(ref)
        if held is None or held.owner != owner:
            raise HostError("not_found", NOT_FOUND)
        return held.data

    def forget_site(self, top_site: str) -> int:
        """Drops every output kept for the site's partitions (forgetting a site); how many."""
        prefix = f"{top_site} "
        with self._lock:
            refs = [r for r, h in self._held.items() if h.owner.startswith(prefix)]
            for ref in refs:
                self._drop(ref)
        return len(refs)

    def _expire(self, now: float) -> None:
        for ref in [r for r, h in self._held.items() if h.expires < now]:
            self._drop(ref)

    def _drop(self, ref: str) -> int:
        size = len(self._held.pop(ref).data)
        self._bytes -= size
        return size

"""Requests for the real method handlers, drawn from fuzz bytes (stress_lib/fuzz_methods.py).

The bytes choose, one draw at a time, a page-facing method (`cos.*`, `models.*`,
`sessions.*`; sometimes a management method or a name that is none), the partition
sending it (site a mostly, site b sometimes), and its parameters: the keys its
handler reads and others, each valued from a pool that reaches past the first check
(the hashes a partition holds, another partition's, unknown ones; upload, session and
output ids handed out to either partition; chunks whose bytes hash right; queries by
hash, name, files or URL) or from shapes no handler expects (nested lists and maps,
numbers at the edges, paths, long and odd strings). Kept free of atheris, so a plain
loop or a test can replay an input.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

PAGE_METHODS = (
    "cos.lookup",
    "cos.write.begin",
    "cos.write.open",
    "cos.write.chunk",
    "cos.write.commit",
    "cos.write.abort",
    "models.availability",
    "models.load",
    "models.cancel",
    "models.list",
    "models.read",
    "models.open",
    "sessions.create",
    "sessions.run",
    "sessions.release",
    "sessions.output",
    "sessions.output_open",
)
OTHER_METHODS = ("manage.delete", "manage.list", "hello", "no.such_method")
KEYS = {
    "cos.lookup": ("sha256",),
    "cos.write.begin": ("sha256", "size"),
    "cos.write.open": ("sha256", "size"),
    "cos.write.chunk": ("upload_id", "offset", "data"),
    "cos.write.commit": ("upload_id",),
    "cos.write.abort": ("upload_id",),
    "models.availability": ("query",),
    "models.load": ("query", "prefetch", "compile", "substitute"),
    "models.cancel": ("request_id",),
    "models.list": ("limit", "cursor"),
    "models.read": ("sha256", "offset", "length"),
    "models.open": ("sha256", "offset"),
    "sessions.create": ("sha256", "execution_providers", "graph_optimization_level"),
    "sessions.run": ("session_id", "feeds", "fetches"),
    "sessions.release": ("session_id",),
    "sessions.output": ("ref", "offset", "length"),
    "sessions.output_open": ("ref",),
}
OTHER_KEYS = ("representation", "files", "graph", "manifest", "name", "version", "url", "x")
LOOPBACK_URL = "http://127.0.0.1:9/m.onnx"  # the discard port: nothing listens there
ODD_STRINGS = (
    "",
    "/etc/passwd",
    "../../../etc/passwd",
    "C:\\Windows\\win.ini",
    "\x00",
    "é" * 40,
    "a" * 5000,
    "sha256-" + "A" * 44,
    LOOPBACK_URL,
    "none",
    "compatible",
    "equivalent",
    "all",
    "cpu",
    "float32",
    "NaN",
)
CHUNK_WAIT_BYTES = 65 << 20  # 64 MiB ahead of the bytes received, and a margin
EDGE_INTS = (0, 1, -1, 7, 4096, 2**31, 2**53, 2**63, -(2**63), 10**30)


@dataclass
class Pools:
    """What the run knows: each partition's hashes and ids, and chunks that hash right."""

    own: dict[str, list[str]] = field(default_factory=lambda: {"a": [], "b": []})
    ids: dict[str, list[str]] = field(default_factory=lambda: {"a": [], "b": []})
    payloads: list[tuple[str, bytes]] = field(default_factory=list)  # (sha256, bytes)
    names: list[str] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)


class Draw:
    """Choices taken from the input's bytes, in order (zeros once they run out)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def pick(self, items: tuple[Any, ...] | list[Any]) -> Any:
        return items[self.byte() % len(items)] if items else None

    def text(self) -> str:
        n = self.byte() % 24
        raw = bytes(self.byte() for _ in range(n))
        return raw.decode("utf-8", "replace")


def request(draw: Draw, pools: Pools) -> tuple[str, str, dict[str, Any]]:
    """(partition "a" or "b", method, params)."""
    partition = "b" if draw.byte() % 5 == 0 else "a"
    method = draw.pick(PAGE_METHODS) if draw.byte() % 16 else draw.pick(OTHER_METHODS)
    keys = list(KEYS.get(method, ()))
    params: dict[str, Any] = {}
    for key in keys:
        if draw.byte() % 8:  # most keys present
            params[key] = value(draw, pools, key, partition)
    for _ in range(draw.byte() % 3 if draw.byte() % 4 == 0 else 0):
        params[draw.pick(OTHER_KEYS + tuple(keys))] = value(draw, pools, "", partition)
    offset = params.get("offset")
    number = isinstance(offset, int | float) and not isinstance(offset, bool)
    # (ahead of the bytes received: those are a few KiB at most here)
    if method == "cos.write.chunk" and number and 0 < float(offset or 0) <= CHUNK_WAIT_BYTES:
        # A chunk out of turn within 64 MiB waits 10 s for the ones before it (by
        # design); the run would spend its time waiting. Further out, it is refused.
        params["offset"] = 0 if draw.byte() % 2 else 1 << 40
    return partition, method, params


def value(draw: Draw, pools: Pools, key: str, partition: str, depth: int = 0) -> Any:
    """A value for `key`: from its pool most of the time, else any JSON shape."""
    if draw.byte() % 4 and depth == 0:
        typed = _typed(draw, pools, key, partition)
        if typed is not None:
            return typed
    kind = draw.byte() % 9
    if kind == 0:
        return draw.pick(EDGE_INTS)
    if kind == 1:
        return draw.pick(ODD_STRINGS)
    if kind == 2:
        return draw.text()
    if kind == 3:
        return bool(draw.byte() % 2)
    if kind == 4:
        return None
    if kind == 5 and depth < 3:
        return [value(draw, pools, "", partition, depth + 1) for _ in range(draw.byte() % 4)]
    if kind == 6 and depth < 3:
        return {
            draw.pick((*OTHER_KEYS, "sha256", "type", "dims", "data")): value(
                draw, pools, "", partition, depth + 1
            )
            for _ in range(draw.byte() % 4)
        }
    if kind == 7:
        return draw.byte() / 7.0
    return _hash(draw, pools, partition)


def _hash(draw: Draw, pools: Pools, partition: str) -> str:
    other = "b" if partition == "a" else "a"
    choice = draw.byte() % 5
    if choice == 0 and pools.own[partition]:
        return str(draw.pick(pools.own[partition]))
    if choice == 1 and pools.own[other]:
        return str(draw.pick(pools.own[other]))
    if choice == 2 and pools.payloads:
        return str(draw.pick(pools.payloads)[0])
    if choice == 3:
        return f"{draw.byte():02x}" * 32
    return "".join(draw.pick(tuple("0123456789abcdefABCDEFg")) for _ in range(64))


def _typed(draw: Draw, pools: Pools, key: str, partition: str) -> Any:
    other = "b" if partition == "a" else "a"
    if key == "sha256":
        return _hash(draw, pools, partition)
    if key in ("upload_id", "session_id", "ref"):
        side = partition if draw.byte() % 4 else other
        return draw.pick(pools.ids[side]) if pools.ids[side] else draw.text()
    if key in ("size", "offset", "length", "limit"):
        if key == "size" and pools.payloads and draw.byte() % 2:
            return len(draw.pick(pools.payloads)[1])
        return draw.pick((*EDGE_INTS, 16, 100, 737280))
    if key == "data" and pools.payloads:
        payload = draw.pick(pools.payloads)[1]
        cut = draw.byte() % (len(payload) + 1)
        return base64.b64encode(payload if draw.byte() % 2 else payload[:cut]).decode()
    if key == "query":
        return _query(draw, pools, partition)
    if key == "request_id":
        return draw.pick(pools.request_ids) if pools.request_ids else draw.byte()
    if key in ("prefetch", "compile"):
        return bool(draw.byte() % 2)
    if key == "feeds":
        data = base64.b64encode(bytes(16 * (draw.byte() % 3))).decode()
        return {
            "x": {"type": draw.pick(("float32", "int64", "bogus")), "dims": [1, 4], "data": data}
        }
    return None


def _query(draw: Draw, pools: Pools, partition: str) -> dict[str, Any]:
    kind = draw.byte() % 4
    if kind == 0:
        return {"sha256": _hash(draw, pools, partition)}
    if kind == 1:
        name = draw.pick(pools.names) if pools.names and draw.byte() % 2 else draw.text()
        return {"name": name, "version": draw.pick(("^1", "1.0.0", "*", "", "x"))}
    if kind == 2:
        path = draw.pick(("model.onnx", "../x", "/abs", "a/b.bin"))
        return {"files": {path: {"sha256": _hash(draw, pools, partition)}}}
    return {
        "sha256": _hash(draw, pools, partition),
        "url": draw.pick((LOOPBACK_URL, "http://[::1]:1/m", "file:///etc/passwd", "data:,x")),
        "size": draw.pick(EDGE_INTS),
    }

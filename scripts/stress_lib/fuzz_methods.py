"""Fuzzing the real method handlers (`scripts/fuzz --target methods`): each input is
turned into one request (stress_lib/fuzz_inputs.py) and dispatched, as the host's
frame loop does, to the handlers of a real host built in this process (real store,
jobs, uploads, sessions and its runtime worker, loopback server) on a fresh folder,
holding a model of site a's and a named model of site b's. What must hold for every
request, else the input is a finding (an exception: atheris saves it):

* exactly one reply, within 60 s (none is a hang; a second one, even later, a bug);
* an error is a documented code with that code's fixed text and only the details a
  page may see (errors.PAGE_DETAILS); `internal` (an exception escaped a handler) is
  a finding too;
* privacy: no reply or event to a page holds a path (an absolute one the page did not
  send, the host's folders, an exception's text), a SHA-256 this partition never sent,
  or site b's model name unless the page sent it; and for a request naming a model
  only the other partition holds, the reply is the one the same request gets for a
  hash nobody holds (a partition cannot tell another's model from none).

Traffic stays on loopback: the process refuses to resolve or connect to anything
else (a fuzzed URL never leaves the machine).
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import ipaddress
import json
import re
import socket
import tempfile
import threading
from collections import Counter, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stress_lib.fuzz_inputs import Draw, Pools, request
from stress_lib.operations import onnx_model
from webmodels.app import Host, build_dispatcher, build_host
from webmodels.config import Config
from webmodels.context import RequestContext
from webmodels.dispatch import Dispatcher
from webmodels.errors import ERROR_CODES, PAGE_DETAILS
from webmodels.protocol.envelope import parse_request

SITES = {"a": "http://a.localhost:8000", "b": "http://b.localhost:8000"}
B_NAME = "secret-b/model"
REPLY_S = 60.0
# Methods whose reply must not tell another partition's model from an unknown hash.
SAME_AS_ABSENT = (
    "cos.lookup",
    "models.availability",
    "models.load",
    "models.read",
    "models.open",
    "sessions.create",
)
_HEX64 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
UNKNOWN = "5" * 64  # never stored


class Finding(AssertionError):
    """A request broke an invariant of the module doc."""


def _loopback(host: object) -> bool:
    if host in ("localhost", "localhost.", None):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network() -> None:
    """Refuse names and addresses other than loopback for the rest of the process."""
    real_connect, real_gai = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise OSError(errno.ENETUNREACH, "the fuzzing harness reaches loopback only")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise socket.gaierror(socket.EAI_NONAME, "the fuzzing harness resolves loopback only")
        return real_gai(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = getaddrinfo


class MethodFuzz:
    """One host and what the run learned; `one(data)` runs and checks one input."""

    def __init__(self) -> None:
        guard_network()
        self.tmp = Path(tempfile.mkdtemp(prefix="wm-fuzz-methods-"))
        config = Config(
            home=self.tmp / "home",
            log_dir=self.tmp / "logs",
            extra={"sessions": {"background_compile": False}},
        )
        self.host: Host = build_host(config)
        atexit.register(self.host.close)
        self.dispatcher: Dispatcher = build_dispatcher(self.host)
        self.contexts = {
            key: RequestContext.parse({"partition": {"top_site": site, "origin": site}})
            for key, site in SITES.items()
        }
        self.pools = Pools(names=[B_NAME, "fuzz/none"])
        self.sent: dict[str, set[str]] = {"a": set(), "b": set()}
        self.recent: deque[tuple[int, list[dict[str, Any]]]] = deque(maxlen=64)
        self.next_id = 0
        self.codes: Counter[str] = Counter()
        self._seed()

    def _seed(self) -> None:
        store = self.host.store
        for key, seed, name in (("a", 1, None), ("b", 2, B_NAME)):
            path = onnx_model(self.tmp / f"{key}.onnx", weight_bytes=64, seed=seed)
            digest = store.import_file(path, name=name, version="1.0.0" if name else None)
            hex_ = digest.model.digest.hex
            partition = self.contexts[key].partition
            assert partition is not None
            store.record_use(digest.model.digest, partition.key)
            self.pools.own[key].append(hex_)
            self.sent[key].add(hex_)  # the page stored it: it knows its hash
        for n in range(3):
            data = bytes(range(n, 200 + n)) * (n + 1)
            self.pools.payloads.append((hashlib.sha256(data).hexdigest(), data))

    # -- one input ----------------------------------------------------------------------

    def one(self, data: bytes) -> None:
        partition, method, params = request(Draw(data), self.pools)
        reply, events = self.call(partition, method, params)
        text = json.dumps(params)
        self.sent[partition] |= {h.lower() for h in _HEX64.findall(text)}
        self.check(partition, text, reply, events)
        self.learn(partition, method, reply)
        self.same_as_absent(partition, method, text, reply)

    def call(
        self, partition: str, method: str, params: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Any]]:
        self.next_id += 1
        rid = self.next_id
        body = json.dumps({"id": rid, "method": method, "params": params}).encode()
        replies: list[dict[str, Any]] = []
        events: list[Any] = []
        answered = threading.Event()

        def respond(reply: dict[str, Any]) -> None:
            replies.append(reply)
            answered.set()

        req = parse_request(body)
        self.dispatcher.dispatch(
            req, self.contexts[partition], lambda n, p: events.append([n, p]), respond
        )
        if not answered.wait(REPLY_S):
            raise Finding(f"no reply within {REPLY_S:.0f} s to {method} {body[:300]!r}")
        self.recent.append((rid, replies))
        for seen_id, seen in self.recent:  # a second reply, even to an earlier request
            if len(seen) != 1:
                raise Finding(f"request {seen_id} got {len(seen)} replies")
        reply = replies[0]
        if reply.get("id") != rid:
            raise Finding(f"reply to {rid} carries id {reply.get('id')!r}")
        self.codes["ok" if reply["ok"] else reply["error"]["code"]] += 1
        return reply, events

    def check(
        self, partition: str, sent_text: str, reply: dict[str, Any], events: list[Any]
    ) -> None:
        if not reply["ok"]:
            error = reply["error"]
            code = error.get("code")
            if code not in ERROR_CODES or error.get("message") != ERROR_CODES[code]:
                raise Finding(f"error not documented or not its fixed text: {error}")
            details = error.get("details", {})
            allowed = PAGE_DETAILS.get(code, frozenset())
            if _echoed(details.get("file"), sent_text):  # errors.PAGE_ECHOED
                allowed = allowed | {"file"}
            if not set(details) <= allowed:
                raise Finding(f"details a page may not see: {error}")
            if code == "internal":
                raise Finding(
                    f"an exception escaped a handler (see the host log): {sent_text[:300]}"
                )
        text = json.dumps([reply, events])
        for secret in (str(self.tmp), "Traceback", "Errno", "blobs/", "segments-v1", B_NAME):
            if secret in text and secret not in sent_text:
                raise Finding(f"reply holds {secret!r}: {text[:500]}")
        for token in _HEX64.findall(text):
            if token.lower() not in self.sent[partition]:
                raise Finding(f"reply holds a hash the page never sent: {token} in {text[:500]}")
        for value in _strings([reply, events]):
            if (value.startswith("/") or ":\\" in value) and value not in sent_text:
                raise Finding(f"reply holds a path: {value!r}")

    def learn(self, partition: str, method: str, reply: dict[str, Any]) -> None:
        if method == "models.load":
            self.pools.request_ids.append(self.next_id)
        if not reply["ok"]:
            return
        result = reply["result"]
        for key in ("upload_id", "session_id"):
            if isinstance(result.get(key), str):
                self.pools.ids[partition].append(result[key])
        outputs = result.get("outputs") if method == "sessions.run" else None
        for output in outputs.values() if isinstance(outputs, dict) else ():
            if isinstance(output, dict) and isinstance(output.get("ref"), str):
                self.pools.ids[partition].append(output["ref"])
        model = result.get("model")
        if method == "cos.write.commit" and isinstance(model, dict) and "sha256" in model:
            self.pools.own[partition].append(model["sha256"])
        for ids in self.pools.ids.values():
            del ids[:-32]

    def same_as_absent(self, partition: str, method: str, text: str, reply: dict[str, Any]) -> None:
        other = "b" if partition == "a" else "a"
        if method not in SAME_AS_ABSENT or '"url"' in text:
            return
        named = _named_hash(json.loads(text))
        if named not in self.pools.own[other] or named in self.pools.own[partition]:
            return
        only_other = [named]
        swapped = text
        for h in only_other:
            swapped = swapped.replace(h, UNKNOWN)
        absent, _ = self.call(partition, method, json.loads(swapped))
        seen = json.dumps(_comparable(reply))
        for h in only_other:
            seen = seen.replace(h, UNKNOWN)
        if seen != json.dumps(_comparable(absent)):
            raise Finding(f"{method} tells {other}'s model from none: {seen[:300]} vs {absent}")


# Fresh each time they are handed out, or telling only what the partition did before
# (its own earlier session of the same model).
_RANDOM = ("url", "upload_id", "session_id", "ref", "compiled_cache_hit")


def _named_hash(params: Any) -> str | None:
    """The model a request names: its `sha256`, or its query's."""
    if not isinstance(params, Mapping):
        return None
    query = params.get("query")
    named = query.get("sha256") if isinstance(query, Mapping) else params.get("sha256")
    return named if isinstance(named, str) else None


def _comparable(reply: Mapping[str, Any]) -> Any:
    """A reply without its id and the capability tokens that differ on every call."""

    def strip(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k not in _RANDOM}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip({k: v for k, v in reply.items() if k != "id"})


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


_FUZZ: list[MethodFuzz] = []


def methods(data: bytes) -> None:
    """The fuzz target: one input through the real handlers (the host is built once)."""
    if not _FUZZ:
        _FUZZ.append(MethodFuzz())
    _FUZZ[0].one(data)


def _echoed(value: object, sent_text: str) -> bool:
    """A set's file key the page itself sent (errors.PAGE_ECHOED): the one detail a
    page may see that is not in PAGE_DETAILS, and only when it is the page's own input."""
    return isinstance(value, str) and json.dumps(value) in sent_text

"""``sessions.*``: compiled ONNX Runtime sessions, run in the host's runtime worker.

`sessions.create` sees exactly the models `models.load` sees (commons/gate.py); a
model the partition may not see is `not_found`, as if absent. Sessions belong to the
partition that created them (runtime/sessions.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import HostError
from webmodels.methods.models import visible_record
from webmodels.runtime.loader import LEVELS
from webmodels.runtime.tensors import parse_feeds, parse_names

if TYPE_CHECKING:
    from webmodels.app import Host

MAX_PROVIDERS = 16


def register(dispatcher: Dispatcher, host: Host) -> None:
    def create(call: Call) -> Mapping[str, Any]:
        digest = call.params.digest()
        providers = _providers(call.params.raw.get("execution_providers"))
        level = _level(call.params.raw.get("graph_optimization_level"))
        record = visible_record(host, digest, call.context)
        if record is None:
            raise HostError("not_found", "no such model is available to this site")
        created = host.sessions.create(
            digest,
            partition=_owner(call),
            providers=providers,
            level=level,
            # A partition's own compile cache for models that are not common, else
            # `compiled_cache_hit` would tell B that A compiled it (DESIGN §4).
            scope=host.sessions.cache_scope(record, _partition(call)),
        )
        return created.to_wire()

    def run(call: Call) -> Mapping[str, Any]:
        session_id = call.params.string("session_id", max_length=128)
        feeds = parse_feeds(call.params.raw.get("feeds"))
        fetches = parse_names(call.params.raw.get("fetches"), field="fetches")
        outputs = host.sessions.run(session_id, _owner(call), feeds, fetches)
        return {"outputs": {name: tensor.to_wire() for name, tensor in outputs.items()}}

    def release(call: Call) -> Mapping[str, Any]:
        session_id = call.params.string("session_id", max_length=128)
        return {"released": host.sessions.release(session_id, _owner(call))}

    dispatcher.add("sessions.create", create)
    dispatcher.add("sessions.run", run)
    dispatcher.add("sessions.release", release)


def _owner(call: Call) -> str:
    """The partition a session belongs to; trusted callers without one (the CLI, the
    popup) own theirs under the empty key."""
    return call.context.partition.key if call.context.partition is not None else ""


def _partition(call: Call) -> str | None:
    return call.context.partition.key if call.context.partition is not None else None


def _providers(value: object) -> list[str] | None:
    """``execution_providers``: names (ORT's, or ORT Web's ``"cpu"``, ``"cuda"``…) or
    ORT Web's ``{name, …}`` objects, in order of preference."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) > MAX_PROVIDERS:
        raise _bad("execution_providers", f"a list of at most {MAX_PROVIDERS} provider names")
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, Mapping) else item
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise _bad("execution_providers", "a list of provider names")
        names.append(name)
    return names


def _level(value: object) -> str:
    if value is None:
        return "all"
    if value not in LEVELS:
        raise _bad("graph_optimization_level", "one of " + ", ".join(LEVELS))
    assert isinstance(value, str)
    return value


def _bad(name: str, what: str) -> HostError:
    return HostError("bad_request", f"params.{name} must be {what}", field=name)

"""``sessions.*``: compiled ONNX Runtime sessions, run in the host's runtime worker.

`sessions.create` sees exactly the models `models.load` sees (commons/gate.py); a
model the partition may not see is `not_found`, as if absent. Sessions belong to the
partition that created them (runtime/sessions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import HostError
from webmodels.manifests import selection
from webmodels.methods import forms
from webmodels.methods.page_view import READ_CHUNK, chunk_reply, visible_record
from webmodels.runtime.loader import LEVELS
from webmodels.runtime.tensors import Tensor, parse_feeds, parse_names
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.app import Host

MAX_PROVIDERS = 16
# Raw output bytes a reply carries inline: base64 (4/3) of this, plus the envelope,
# stays under the 1 MiB host→browser frame.
INLINE_OUTPUT_BYTES = 640 * 1024


def register(dispatcher: Dispatcher, host: Host) -> None:
    def create(call: Call) -> Mapping[str, Any]:
        if "files" in call.params.raw or "manifest" in call.params.raw:
            return create_over_files(call)
        digest = call.params.digest()
        providers = _providers(call.params.raw.get("execution_providers"))
        level = _level(call.params.raw.get("graph_optimization_level"))
        record = visible_record(host, digest, call.context)
        if record is None:
            raise HostError("not_found", "no such model is available to this site")
        # `representation`: another form of it (derived, or one its catalog declares)
        form = forms.form_now(host, call, record) or forms.chosen(host, record)
        record = form.record
        created = host.sessions.create(
            record.digest,
            partition=_owner(call),
            providers=providers,
            level=level,
            # A partition's own compile cache for models that are not common, else
            # `compiled_cache_hit` would tell B that A compiled it (docs/design.md#privacy).
            scope=host.sessions.cache_scope(record, _partition(call)),
            # Only forms the host made, or a catalog declares, are "ort" (representations/);
            # any other file is loaded, and checked, as ONNX.
            model_format=form.model_format,
        )
        return created.to_wire() | form.to_wire()

    def create_over_files(call: Call) -> Mapping[str, Any]:
        """A session over a model made of several files: ``files`` a page names by hash
        (each seen through the same gate as one model), or a stored ``manifest`` (by
        hash or name; the user's callers only, so a page cannot probe, by timing, which
        manifests the user imported)."""
        raw = call.params.raw
        graph = raw.get("graph")
        if graph is not None and not isinstance(graph, str):
            raise _bad("graph", "the path of the graph among the files")
        if "manifest" in raw and call.context.partition is None:
            manifest = selection.stored_manifest(host.store, raw["manifest"])
        elif "files" in raw:

            def gate(digest: Digest) -> ModelRecord | None:
                return visible_record(host, digest, call.context)

            manifest = selection.page_files(raw["files"], gate, graph=graph)
        else:
            raise _bad("files", "an object of file names, each {sha256}")
        chosen = selection.session_files(host.store, manifest, graph=graph)
        created = host.sessions.create(
            chosen.graph,
            partition=_owner(call),
            providers=_providers(raw.get("execution_providers")),
            level=_level(raw.get("graph_optimization_level")),
            files=chosen.external,
            # A page's own compile cache: a hit must not tell it another site compiled
            # the same files (the user's callers share theirs).
            scope=_partition(call) or "",
        )
        return created.to_wire()

    def run(call: Call) -> Mapping[str, Any]:
        session_id = call.params.string("session_id", max_length=128)
        feeds = parse_feeds(call.params.raw.get("feeds"))
        fetches = parse_names(call.params.raw.get("fetches"), field="fetches")
        outputs = host.sessions.run(session_id, _owner(call), feeds, fetches)
        return {
            "outputs": _reply_outputs(outputs, lambda data: host.outputs.put(_owner(call), data))
        }

    def output(call: Call) -> Mapping[str, Any]:
        """A chunk of an output `run` kept (too big for its reply)."""
        data = host.outputs.get(call.params.string("ref", max_length=64), _owner(call))
        offset = call.params.integer("offset", default=0)
        length = call.params.integer("length", default=READ_CHUNK, minimum=1)
        if offset > len(data):
            raise HostError("bad_request", f"offset {offset} is past the end ({len(data)} bytes)")
        return chunk_reply(data[offset : offset + min(length, READ_CHUNK)], offset, len(data))

    def output_open(call: Call) -> Mapping[str, Any]:
        """A one-time loopback URL for a kept output (the fast byte path, loopback.py)."""
        data = host.outputs.get(call.params.string("ref", max_length=64), _owner(call))
        capability = host.loopback.issue_bytes(data, owner=_owner(call))
        return {"url": capability.url, "size": capability.size, "expires_in": capability.expires_in}

    def release(call: Call) -> Mapping[str, Any]:
        session_id = call.params.string("session_id", max_length=128)
        return {"released": host.sessions.release(session_id, _owner(call))}

    dispatcher.add("sessions.create", create)
    dispatcher.add("sessions.run", run)
    dispatcher.add("sessions.release", release)
    dispatcher.add("sessions.output", output)
    dispatcher.add("sessions.output_open", output_open)


def _reply_outputs(outputs: Mapping[str, Tensor], keep: Callable[[bytes], str]) -> dict[str, Any]:
    """Outputs as the reply carries them: inline (base64) while they fit in one frame,
    smallest first; the rest kept by `keep` and answered as ``{type, dims, ref, size}``
    for `sessions.output` / `sessions.output_open`."""
    room = INLINE_OUTPUT_BYTES
    wire: dict[str, Any] = {}
    for name, tensor in sorted(outputs.items(), key=lambda item: item[1].nbytes):
        if isinstance(tensor.data, bytes) and tensor.nbytes > room:
            wire[name] = {
                "type": tensor.type,
                "dims": list(tensor.dims),
                "ref": keep(tensor.data),
                "size": tensor.nbytes,
            }
        else:
            wire[name] = tensor.to_wire()
            room -= tensor.nbytes
    return {name: wire[name] for name in outputs}  # in the model's order


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

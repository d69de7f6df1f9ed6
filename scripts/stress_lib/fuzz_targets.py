"""Fuzz targets: each takes arbitrary bytes and feeds them to one of the host's
parsers. Only `HostError` with a documented code (errors.ERROR_CODES, PROTOCOL.md) may
come out; anything else is a crash, and `Undocumented` is raised for a code that is
not in the table (HostError refuses to be built with one, so this guards subclasses
and hand-made errors).

Kept free of atheris so the targets can also be run by plain loops and tests.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from webmodels.catalogs import documents
from webmodels.commons import lists
from webmodels.context import RequestContext
from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import ERROR_CODES, HostError
from webmodels.protocol.envelope import parse_request
from webmodels.protocol.framing import Frame, FrameDecoder, FrameError
from webmodels.runtime.safety import ModelLimits, check_model
from webmodels.store import metadata, onnx_wire


class Undocumented(AssertionError):
    """A rejection whose code is not in PROTOCOL.md's list."""


def _code(error: HostError) -> None:
    if error.code not in ERROR_CODES or not error.message:
        raise Undocumented(f"code {error.code!r}: {error.message!r}")


def frames(data: bytes) -> None:
    """The native-messaging frame decoder, fed the bytes in pieces of sizes the input
    itself chooses, then the end of the stream."""
    decoder = FrameDecoder(max_frame=1 << 16)
    cut = data[0] if data else 1
    items: list[Frame | FrameError] = []
    for start in range(0, len(data), max(1, cut)):
        items += decoder.feed(data[start : start + max(1, cut)])
    items += decoder.eof()
    for item in items:
        if isinstance(item, FrameError):
            if item.code not in ERROR_CODES:
                raise Undocumented(item.code)
        elif not 0 < len(item.body) <= 1 << 16:
            raise AssertionError(f"frame of {len(item.body)} bytes passed the decoder")
    if decoder.buffered > (1 << 16) + 8:
        raise AssertionError(f"decoder holds {decoder.buffered} bytes")


def _dispatcher() -> Dispatcher:
    """Routes that validate their parameters as the real methods do."""

    def validate(call: Call) -> Mapping[str, Any]:
        return {
            "sha256": call.params.digest().hex,
            "size": call.params.integer("size", minimum=0),
            "name": call.params.string("name", default="", max_length=256),
            "force": call.params.boolean("force", default=False),
        }

    dispatcher = Dispatcher()
    dispatcher.add("cos.write.begin", validate)
    dispatcher.add("manage.delete", validate, trusted_only=True)
    return dispatcher


_DISPATCHER = _dispatcher()


def requests(data: bytes) -> None:
    """A frame body through the envelope parser, the request context and dispatch: the
    reply is one envelope, ok or with a documented code."""
    try:
        request = parse_request(data)
        context = (
            RequestContext.trusted_local()
            if request.context is None
            else RequestContext.parse(request.context)
        )
    except HostError as exc:
        _code(exc)
        return
    reply = _DISPATCHER.handle(request, context)
    json.dumps(reply)
    if reply["id"] != request.id:
        raise AssertionError(f"reply to {request.id!r} carries id {reply['id']!r}")
    if not reply["ok"] and reply["error"]["code"] not in ERROR_CODES:
        raise Undocumented(reply["error"]["code"])


def catalogs(data: bytes) -> None:
    """A catalog document (signed envelope), and the same bytes as its payload."""
    for parse in (documents.read_catalog, documents.parse_payload):
        try:
            parse(data)
        except HostError as exc:
            _code(exc)


def commons(data: bytes) -> None:
    """A commons list document, and the same bytes as its payload."""
    for parse in (lists.read_list, lists.parse_payload):
        try:
            parse(data)
        except HostError as exc:
            _code(exc)


_TMP = Path(tempfile.mkdtemp(prefix="wm-fuzz-"))


def onnx_metadata(data: bytes) -> None:
    """The store's metadata readers: the wire-level one every import and download runs,
    and the one built on onnx's own parser and checker."""
    path = _TMP / "model.onnx"
    path.write_bytes(data)
    # Both refusals are answered by storing the bytes as a plain file.
    with contextlib.suppress(onnx_wire.WireInvalid, onnx_wire.WireCapped):
        onnx_wire.read_wire_metadata(path, locations=set())
    for read in (metadata.describe_file, metadata.read_onnx_metadata):
        try:
            read(path)
        except HostError as exc:
            _code(exc)


def onnx_safety(data: bytes) -> None:
    """The worker's safety check, on what protobuf makes of the bytes (the worker runs
    it on every model before ONNX Runtime sees it)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.ModelProto.FromString(data)
    except (DecodeError, RecursionError, ValueError):
        return  # onnx.load refuses these as model_invalid before the check
    try:
        check_model(model, limits=ModelLimits(max_nodes=10_000, max_tensor_bytes=1 << 30))
    except HostError as exc:
        _code(exc)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "frames": frames,
    "requests": requests,
    "catalogs": catalogs,
    "commons": commons,
    "onnx_metadata": onnx_metadata,
    "onnx_safety": onnx_safety,
}

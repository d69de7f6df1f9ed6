"""``cos.*``: the Cross-Origin Storage API's look-ups and writes, with the same
visibility rules as ``models.*`` (a model the partition may not see is absent)."""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from webmodels.dispatch import Call, Dispatcher
from webmodels.errors import HostError
from webmodels.methods.page_room import quota_left
from webmodels.methods.page_view import model_for_page, visible_record
from webmodels.store.metadata import describe_file
from webmodels.store.quotas import check_total_quota

if TYPE_CHECKING:
    from webmodels.app import Host

log = logging.getLogger(__name__)


def register(dispatcher: Dispatcher, host: Host) -> None:
    store = host.store

    def key(call: Call) -> str | None:
        return call.context.partition.key if call.context.partition is not None else None

    def lookup(call: Call) -> Mapping[str, Any]:
        record = visible_record(host, call.params.digest(), call.context)
        if record is None:
            return {"found": False}
        if call.context.partition is not None:
            store.record_use(record.digest, call.context.partition.key)
        return {"found": True, "size": record.size}

    def begin(call: Call) -> Mapping[str, Any]:
        digest = call.params.digest()
        size = call.params.integer("size")
        quota_left(host, call, size)
        upload = host.uploads.begin(digest, size, key(call))
        return {"upload_id": upload.id}

    def chunk(call: Call) -> Mapping[str, Any]:
        upload_id = call.params.string("upload_id", max_length=64)
        offset = call.params.integer("offset")
        try:
            data = base64.b64decode(call.params.string("data", max_length=96 << 20), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HostError("bad_request", "params.data must be base64", field="data") from exc
        return {"received": host.uploads.write(upload_id, key(call), offset, data)}

    def open_write(call: Call) -> Mapping[str, Any]:
        """An upload whose bytes come as one PUT to a one-time loopback URL (the fast
        write path, loopback.py); the extension keeps the URL from the page."""
        digest = call.params.digest()
        size = call.params.integer("size")
        quota_left(host, call, size)
        partition = key(call)
        upload = host.uploads.begin(digest, size, partition)
        issued = time.monotonic()

        def receive(pieces: Iterator[bytes]) -> Mapping[str, Any]:
            marks = {"ticket": issued, "put": time.monotonic()}
            host.uploads.stream(upload.id, partition, pieces)
            marks["body"] = time.monotonic()  # received, written and hashed
            result = publish(call, upload.id, marks)
            log.info("loopback write phases (s): %s", _phases(marks))  # scripts/bench
            return result

        capability = host.loopback.issue_upload(
            size,
            receive,
            owner=partition or "",
            on_drop=lambda: host.uploads.abort(upload.id, partition),
        )
        return {"url": capability.url, "size": size, "expires_in": capability.expires_in}

    def commit(call: Call) -> Future[Mapping[str, Any]]:
        upload_id = call.params.string("upload_id", max_length=64)
        return host.uploads.committing.submit(publish, call, upload_id)

    def publish(
        call: Call, upload_id: str, marks: dict[str, float] | None = None
    ) -> Mapping[str, Any]:
        """Verify, publish and describe; the answer is padded to the downloads' floor,
        so bytes another site holds (an index row updated, one more holder) cannot be
        timed (PRIVACY.md, "Write timing"). `marks` gets when each step ended."""
        marks = {} if marks is None else marks
        pending = host.uploads.commit(upload_id, key(call))  # hashed and fsynced
        started = marks["fsync"] = time.monotonic()
        partition = key(call)
        refs = [("site", partition)] if partition else [("import", "cos")]
        try:
            if partition:
                check_total_quota(store.index, host.config.quota_total_bytes)
            metadata = describe_file(pending.temp_path)
            marks["describe"] = time.monotonic()
            result = store.ingest(pending, metadata, origin="downloaded", refs=refs)
            marks["publish"] = time.monotonic()
        finally:
            store.files.discard(pending)
        reply = {"model": model_for_page(host, result.model, call.context)}
        time.sleep(max(0.0, started + host.jobs.options.settle_floor_s - time.monotonic()))
        marks["floor"] = time.monotonic()
        return reply

    def abort(call: Call) -> Mapping[str, Any]:
        upload_id = call.params.string("upload_id", max_length=64)
        return {"aborted": host.uploads.abort(upload_id, key(call))}

    dispatcher.add("cos.lookup", lookup)
    dispatcher.add("cos.write.begin", begin)
    dispatcher.add("cos.write.open", open_write)
    dispatcher.add("cos.write.chunk", chunk)
    dispatcher.add("cos.write.commit", commit)
    dispatcher.add("cos.write.abort", abort)


def _phases(marks: Mapping[str, float]) -> str:
    """`name=seconds` for each step since the one before (ticket: issued to PUT)."""
    names = list(marks)
    return " ".join(f"{b}={marks[b] - marks[a]:.3f}" for a, b in itertools.pairwise(names))

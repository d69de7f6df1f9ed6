"""A page's download of a model (``models.load``): who may share its transfer, how many
bytes it may start without a user gesture, what a load starts afterwards (the runtime
worker ahead of a session, a compile asked for), and the futures that turn a finished
download into the request's reply."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.dispatch import Call
from webmodels.errors import HostError
from webmodels.fetch.access import serialize
from webmodels.fetch.records import DownloadRequest
from webmodels.fetch.set_progress import FileProgress
from webmodels.methods import forms
from webmodels.methods.page_room import quota_left
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.app import Host

log = logging.getLogger(__name__)


def partition_key(call: Call) -> str | None:
    return call.context.partition.key if call.context.partition is not None else None


def or_error(future: Future[ModelRecord], error: HostError) -> Future[ModelRecord]:
    """`future`, with `error` in place of any HostError it fails with."""
    out: Future[ModelRecord] = Future()

    def settle(done: Future[ModelRecord]) -> None:
        failed = error if done.cancelled() else done.exception()
        if failed is None:
            out.set_result(done.result())
        else:
            out.set_exception(error if isinstance(failed, HostError) else failed)

    future.add_done_callback(settle)
    return out


def activation_limit(call: Call, limit: int) -> int | None:
    """The most bytes this caller may start downloading: pages need a user gesture
    (read by the extension's relay in the isolated world) for more; trusted callers
    (the CLI, the popup) act for the user."""
    if call.context.trusted or call.context.user_activation:
        return None
    return limit


def download_scope(host: Host, call: Call, digest: Digest) -> str:
    """Who may share this download's transfer (fetch/jobs.py): everyone for trusted
    callers and common models (pre-installed or on a commons list in force), else
    only the caller's own partition, so no site joins or learns of another's."""
    if call.context.partition is None:
        return ""
    if host.commons.is_listed(digest):
        return ""
    if host.store.index.query("SELECT 1 FROM preinstalled WHERE sha256 = ?", (digest.hex,)):
        return ""
    return call.context.partition.key


def page_origin(call: Call) -> str | None:
    """The frame's origin, when a page (not a trusted caller) chose the URLs: the
    download then fetches only what that frame could read with `fetch()`."""
    context = call.context
    if context.trusted or context.partition is None:
        return None
    return serialize(context.partition.origin)


def model_loaded(host: Host, call: Call, record: ModelRecord) -> None:
    """A page loaded an ONNX model: a session of it may come next (issue 12). Start the
    runtime worker ahead, and queue a background compile in the caller's own cache
    scope when the load asked for one (``compile: true``)."""
    if record.format != "onnx":
        return
    host.sessions.prestart()
    if forms.requested(call) is None:  # else `record` is a form (forms.in_form queues)
        forms.derive_ahead(host, call, record)  # ``derive``: forms asked for later
    if call.params.boolean("compile", default=False):
        host.sessions.request_compile(
            record, host.sessions.cache_scope(record, partition_key(call))
        )


def loaded_after(host: Host, call: Call, done: Future[ModelRecord]) -> None:
    try:
        if done.exception() is None:
            model_loaded(host, call, done.result())
    except Exception:  # a side effect: the load's own reply is `_then`'s business
        log.exception("after a load")


def then(
    future: Future[ModelRecord], make: Callable[[ModelRecord], Mapping[str, Any]]
) -> Future[Mapping[str, Any]]:
    mapped: Future[Mapping[str, Any]] = Future()

    def done(source: Future[ModelRecord]) -> None:
        # Raised here, an exception would be logged and dropped by the Future and
        # the request never answered: it goes to the reply instead.
        try:
            exc = source.exception()
            if exc is not None:
                raise exc
            made = make(source.result())
        except Exception as failure:
            mapped.set_exception(failure)
        else:
            mapped.set_result(made)

    future.add_done_callback(done)
    return mapped


def download_file(
    host: Host,
    call: Call,
    digest: Digest,
    urls: tuple[str, ...],
    size: int | None,
    *,
    page_chosen: bool,
    progress: FileProgress | None = None,
) -> Future[ModelRecord]:
    """The caller's download of one file through the host's download jobs, under its
    partition's rules (a gesture past the activation limit, its quota, its own transfer
    scope); ``page_chosen``: URLs the page named itself (Local Network Access applies)."""
    # Not visible: a real transfer, verified, even if the bytes are stored for
    # another site (the network then behaves as without the store, docs/design.md#privacy).
    limit = activation_limit(call, host.config.download_without_activation_bytes)
    if limit is not None and size is not None and size > limit:
        raise HostError(
            "user_activation_required",
            f"a download of more than {limit} bytes needs a user gesture on the page",
            limit=limit,
        )
    room = quota_left(host, call, size, digest=digest)
    request = DownloadRequest(
        digest=digest,
        urls=urls,
        waiter=str(call.request_id),
        partition=partition_key(call),
        size=size,
        background=call.params.boolean("prefetch", default=False),
        size_limit=limit,
        quota_left=room,
        origin=page_origin(call) if page_chosen else None,
        scope=download_scope(host, call, digest),
    )

    def emitted(loaded: int, total: int | None) -> None:
        call.emit("download.progress", {"loaded": loaded, "total": total})

    _, future = host.jobs.request(request, progress or emitted)
    future.add_done_callback(lambda done: loaded_after(host, call, done))
    return future

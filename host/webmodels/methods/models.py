"""``models.*``: what pages call. Every answer goes through `policy.can_see`, so a
model the partition may not see is indistinguishable from an absent one."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from webmodels import policy
from webmodels.catalogs.forms import DeclaredForm
from webmodels.context import RequestContext
from webmodels.digest import Digest
from webmodels.dispatch import Call, Dispatcher, Result
from webmodels.errors import HostError
from webmodels.fetch.set_progress import FileProgress
from webmodels.methods import forms, model_sets, page_sets
from webmodels.methods.page_downloads import (
    download_file,
    model_loaded,
    or_error,
    partition_key,
    then,
)
from webmodels.methods.page_room import quota_left
from webmodels.methods.page_view import READ_CHUNK, chunk_reply, model_for_page, visible_record
from webmodels.naming.resolve import Candidate, Choice, NameQuery, parse_substitute
from webmodels.naming.sources import record_request
from webmodels.naming.versions import Version
from webmodels.paging import PageRequest, fill
from webmodels.query import ModelQuery
from webmodels.read_offsets import check_offset, send_from
from webmodels.representations.choice import explain
from webmodels.store.listing import Order, Scan, scan
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.app import Host

log = logging.getLogger(__name__)


def register(dispatcher: Dispatcher, host: Host) -> None:
    store = host.store

    def info(record: ModelRecord, context: RequestContext) -> dict[str, Any]:
        return model_for_page(host, record, context)

    def visible(digest: Digest | None, context: RequestContext) -> ModelRecord | None:
        # Own, pre-installed or common within the probe budget (commons/gate.py).
        return visible_record(host, digest, context)

    def resolved(call: Call, query: ModelQuery, *, remember: bool = False) -> Choice:
        """The name query's choice (naming/resolve.py); `not_found` when no source
        knows a version in range. Visibility is this partition's, as everywhere."""
        assert query.name is not None and query.range is not None
        try:
            substitute = parse_substitute(call.params.raw.get("substitute"))
        except ValueError as exc:
            raise HostError("bad_request", str(exc), field="substitute") from exc
        inline = None
        if query.inline:
            assert query.digest is not None
            version = Version.parse(query.range.text)
            inline = Candidate(query.name, version, query.digest, query.size, query.urls, "request")
        wanted = NameQuery(query.name, query.range, substitute)
        choice = host.names.resolve(
            wanted,
            visible=lambda digest: visible(digest, call.context) is not None,
            inline=inline,
        )
        if choice is None:
            raise HostError(
                "not_found",
                f"no catalog or pre-installed model has {query.name} in range {query.range.text!r}",
                name=str(query.name),
                version=query.range.text,
            )
        if remember and call.context.partition is not None:  # loads, not mere probes
            record_request(store, partition=call.context.partition.key, query=wanted)
        return choice

    def named(model: Mapping[str, Any], choice: Choice) -> dict[str, Any]:
        given = choice.candidate
        return {
            **model,
            "name": str(given.name),
            "version": str(given.version),
            "substituted": choice.substituted,
        }

    def availability(call: Call) -> Mapping[str, Any]:
        query = ModelQuery.parse(call.params.raw.get("query"))
        if query.name is not None:
            choice = resolved(call, query)
            files = page_sets.catalog_files(host, choice.candidate)
            if files:  # a model of several files: this partition's view of all of them
                return {"availability": page_sets.availability(host, call, files)}
            if choice.visible:
                return {"availability": "available"}
            if host.jobs.downloading(choice.candidate.digest, partition_key(call)):
                return {"availability": "downloading"}
            return {"availability": "downloadable" if choice.candidate.urls else "unavailable"}
        if visible(query.digest, call.context) is not None:
            return {"availability": "available"}
        if query.digest is not None and host.jobs.downloading(query.digest, partition_key(call)):
            return {"availability": "downloading"}  # only for this partition's own requests
        # Byte-identical for "absent" and "held by another site" (docs/design.md#privacy).
        return {"availability": "downloadable" if query.urls else "unavailable"}

    def load(call: Call) -> Result:
        raw = call.params.raw.get("query")
        for flag in ("prefetch", "compile"):  # booleans, whatever the model turns out to be
            call.params.boolean(flag, default=False)
        forms.ahead(call)  # `derive`: checked (bad_request) before anything is fetched
        representation = call.params.raw.get("representation")
        if representation is not None:  # checked (bad_request) before anything is fetched
            log.info("representation asked: %s", explain(representation))
        if isinstance(raw, Mapping) and "files" in raw:  # several files, by hash
            fetched = page_sets.page_set(raw["files"])
            if fetched is not None:  # with their URLs: what the page does not see yet
                return load_set(call, fetched, page_chosen=True, describe=lambda: raw)
            return {"model": model_sets.load_files(host, call, raw)}
        query = ModelQuery.parse(raw)
        if query.name is not None:
            stored = model_sets.load_stored(host, call, query)  # a manifest of that name
            return {"model": stored} if stored is not None else load_named(call, query)
        declared = forms.declared_by_hash(host, call, query.digest)
        if declared is not None and query.digest is not None:
            return load_declared(call, declared, query.digest, lambda model: model)
        record = visible(query.digest, call.context)
        if record is not None:
            return in_form(call, record, lambda form, extras: {"model": give(form, call) | extras})
        if not query.urls or query.digest is None:
            raise HostError("not_found", "no such model is available to this site")
        return after_download(
            call,
            download_file(host, call, query.digest, query.urls, query.size, page_chosen=True),
            lambda model, extras: {"model": info(model, call.context) | extras},
        )

    def in_form(call: Call, record: ModelRecord, make: forms.Make) -> Result:
        """``make`` of the model in the form the call asked for (methods/forms.py)."""
        if forms.requested(call) is None:
            return make(record, {})
        return forms.in_form(host, call, record, make)

    def after_download(call: Call, future: Future[ModelRecord], make: forms.Make) -> Result:
        if forms.requested(call) is None:
            return then(future, lambda model: make(model, {}))
        return forms.after(host, call, future, make)

    def give(record: ModelRecord, call: Call) -> dict[str, Any]:
        if store.servable_recipe(record.digest) is None:  # kept as segments: no view
            store.locate(record.digest)  # size (and mtime) checked before we say yes
        if call.context.partition is not None:
            store.record_use(record.digest, call.context.partition.key)
        model_loaded(host, call, record)
        return info(record, call.context)

    def load_set(
        call: Call,
        files: list[page_sets.SetFile],
        *,
        page_chosen: bool,
        describe: Callable[[], Mapping[str, Any] | None],
        label: tuple[str, str] | None = None,
    ) -> Result:
        """A model of several files, downloaded as one (methods/page_sets.py)."""

        def one(
            digest: Digest, urls: tuple[str, ...], size: int | None, progress: FileProgress
        ) -> Future[ModelRecord]:
            return download_file(
                host, call, digest, urls, size, page_chosen=page_chosen, progress=progress
            )

        def room(size: int) -> object:
            return quota_left(host, call, size)

        return page_sets.load_set(
            host,
            call,
            files,
            download=one,
            room=room,
            describe=describe,
            label=label,
            page_keys=page_chosen,  # the page named each file: its failure names the key
        )

    def load_named(call: Call, query: ModelQuery) -> Result:
        choice = resolved(call, query, remember=True)
        given = choice.candidate
        files = page_sets.catalog_files(host, given)
        if files:  # a catalog entry of several files: its manifest once all are stored

            def stored() -> Mapping[str, Any] | None:
                model = page_sets.catalog_model(host, call, files, given)
                if model is not None:
                    model["model"]["substituted"] = choice.substituted
                return model

            as_named = (str(given.name), str(given.version))
            return load_set(call, files, page_chosen=False, describe=stored, label=as_named)
        if given.source.startswith("catalog:"):  # a signed name: `webmodels ls` shows it
            label = (str(given.name), str(given.version))
        else:
            label = None
        form = forms.declared_form(host, call, given)
        if form is not None:  # its catalog's own file for that form, never derived
            return load_declared(call, form, given.digest, lambda model: named(model, choice))
        record = visible(given.digest, call.context) if choice.visible else None
        if record is not None:
            if label is not None:
                store.name_object(record.digest, *label)
            return in_form(
                call,
                record,
                lambda form, extras: {"model": named(give(form, call), choice) | extras},
            )
        missing = HostError(
            "not_found",
            f"{given.name}@{given.version} has no download URL and is not available to this site",
        )
        # No URL: only the mirrors may have it (a catalog entry by sha256), and whatever
        # they answer, a failure reads as without mirrors (PRIVACY.md, "Mirrors").
        if not given.urls and (not host.config.mirrors or given.source == "request"):
            raise missing

        def done(model: ModelRecord, extras: dict[str, Any]) -> Mapping[str, Any]:
            if label is not None and not extras.get("derived_from"):
                store.name_object(model.digest, *label)
            return {"model": named(info(model, call.context), choice) | extras}

        page_chosen = given.source == "request"  # an inline descriptor's own URLs
        try:
            future = download_file(
                host, call, given.digest, given.urls, given.size, page_chosen=page_chosen
            )
        except HostError:  # over the activation limit, or the quota: as without mirrors
            if given.urls:
                raise
            raise missing from None
        return after_download(call, future if given.urls else or_error(future, missing), done)

    Label = Callable[[dict[str, Any]], dict[str, Any]]

    def load_declared(call: Call, form: DeclaredForm, of: Digest, label: Label) -> Result:
        """The catalog's own file for the form asked of the model ``of``: held, or
        downloaded from the catalog's URLs and verified by its hash (never derived)."""
        extras = forms.declared_extras(form, of)
        held = visible(form.digest, call.context)
        if held is not None:
            return {"model": label(give(held, call)) | extras}
        fetched = download_file(host, call, form.digest, form.urls, form.size, page_chosen=False)
        return then(fetched, lambda m: {"model": label(info(m, call.context)) | extras})

    def cancel(call: Call) -> Mapping[str, Any]:
        raw = call.params.raw.get("request_id")
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise HostError("bad_request", "params.request_id must be a request id")
        # Only a page's own requests (trusted callers: any); one per file of a model.
        cancelled = False
        while host.jobs.cancel(str(raw), partition=partition_key(call)):
            cancelled = True
        return {"cancelled": cancelled}

    def list_models(call: Call) -> Mapping[str, Any]:
        # By SHA-256: a page's cursor holds only a digest it was shown, never a label.
        request = PageRequest.parse(call.params, kind="models.list", shape=(str,))
        relaxed, context = host.commons.relaxed(), call.context
        what = Scan(Order.SHA256, servable=True, seen_by=None if relaxed else _seen_by(call))

        def shown(record: ModelRecord) -> dict[str, Any] | None:
            return info(record, context) if relaxed or policy.can_see(record, context) else None

        entries = scan(store.index, what, request.after)
        items, cursor = fill(entries, request, kind="models.list", render=shown)
        return {"models": items, "next_cursor": cursor}

    def read(call: Call) -> Mapping[str, Any]:
        digest = call.params.digest()
        offset = call.params.integer("offset", default=0)
        length = call.params.integer("length", default=READ_CHUNK, minimum=1)
        if visible(digest, call.context) is None:
            raise HostError("not_found", "no such model is available to this site")
        data, size = store.read(digest, offset, min(length, READ_CHUNK))
        return chunk_reply(data, offset, size)

    def open_url(call: Call) -> Mapping[str, Any]:
        """A one-time loopback URL for the whole model (loopback.py): the extension's
        bridge fetches it instead of reading 1 MiB frames; from `offset` on when a read
        that broke resumes. Same visibility as read."""
        digest = call.params.digest()
        if visible(digest, call.context) is None:
            raise HostError("not_found", "no such model is available to this site")
        offset = call.params.integer("offset", default=0)  # a read that broke resumes here
        owner = call.context.partition.key if call.context.partition is not None else ""
        if (recipe := store.servable_recipe(digest)) is not None:  # kept as segments
            check_offset(offset, recipe.size)
            send = functools.partial(send_from, store.segmented, recipe, offset)
            capability = host.loopback.issue_stream(digest, recipe.size - offset, send, owner=owner)
        else:
            location = store.locate(digest)
            check_offset(offset, location.size)
            capability = host.loopback.issue(
                digest, location.path, location.size, owner=owner, start=offset
            )
        return {"url": capability.url, "size": capability.size, "expires_in": capability.expires_in}

    dispatcher.add("models.availability", availability)
    dispatcher.add("models.open", open_url)
    dispatcher.add("models.load", load)
    dispatcher.add("models.cancel", cancel)
    dispatcher.add("models.list", list_models)
    dispatcher.add("models.read", read)


def _seen_by(call: Call) -> tuple[str, str] | None:
    """What narrows a page's listing scan (the final word is `policy.can_see`)."""
    if call.context.trusted:
        return None
    partition = call.context.partition
    if partition is None:
        return ("", "")  # no partition: only pre-installed models
    return (partition.key, str(partition.top_site))

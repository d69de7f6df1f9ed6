"""The ``representation`` option of `models.load` and `sessions.create`: the model a
page may see, in the form its runtime asked for (representations/deriver.py).

A form is derived from a source the caller may see, in the caller's own scope for a
model that is not common, so its answer (and how long it takes) is the same whatever
other sites did. The page is told what it got: ``representation`` and
``derived_from`` (the source's SHA-256, which it asked for itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webmodels.catalogs.forms import DeclaredForm
from webmodels.digest import Digest
from webmodels.dispatch import Call
from webmodels.errors import HostError
from webmodels.methods.page_room import quota_left
from webmodels.naming.resolve import Candidate
from webmodels.representations.declared import (
    SOURCE,
    all_declared,
    declared,
    declared_for,
    record_format,
)
from webmodels.representations.deriver import Form
from webmodels.representations.recipes import Recipe
from webmodels.store.records import ModelRecord
from webmodels.store.representations import all_forms
from webmodels.store.segments.sharing import file_usage

if TYPE_CHECKING:
    from webmodels.app import Host

log = logging.getLogger(__name__)
Make = Callable[[ModelRecord, dict[str, Any]], Mapping[str, Any]]


def requested(call: Call) -> Recipe | None:
    """The call's recipe; None when it asked for no representation."""
    raw = call.params.raw.get("representation")
    return None if raw is None else Recipe.requested(raw)


MAX_AHEAD = 4  # forms one load may ask ahead


def ahead(call: Call) -> tuple[Recipe, ...]:
    """The forms a load asks ahead (``derive``: a list of ``representation`` objects,
    at most `MAX_AHEAD`), checked before anything is fetched (``bad_request``)."""
    raw = call.params.raw.get("derive")
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_AHEAD:
        raise HostError(
            "bad_request",
            f"derive must be a list of at most {MAX_AHEAD} representation objects",
            field="derive",
        )
    return tuple(Recipe.requested(item) for item in raw)


def derive_ahead(host: Host, call: Call, record: ModelRecord) -> None:
    """Once the caller holds ``record`` (stored or just downloaded: the model its query
    named, never a form of it), queue the forms its load asked ahead, in the caller's
    own scope like any form, so that a later load or session in that representation
    finds them made. Best effort: the load's answer never waits for them or fails by
    them; one past the partition's quota is not queued (logged)."""
    partition = call.context.partition.key if call.context.partition is not None else None
    for recipe in ahead(call):
        concrete = recipe.for_source(record.metadata.opsets)
        if concrete.identity or declared_for(host.store.index, record.digest, recipe):
            continue  # the model itself, or its catalog's own file: nothing to derive
        try:
            _room_for(host, call, record, recipe)
        except HostError as refused:
            log.info("a form asked ahead was not queued: %s", refused.message)
            continue
        host.representations.ahead(
            record, recipe, partition=partition, visible=_visible(host, call)
        )


def manage_render(host: Host) -> Callable[[ModelRecord], dict[str, Any]]:
    """`ModelRecord.manage_info` for the user's own views (``manage.list``), with
    ``derived_from`` and ``representation`` on a form the host derived, or one a
    catalog in force declares (``representation.source`` "catalog", as `webmodels ls`
    shows it), so the popup lists forms under their model."""
    forms: dict[Digest, dict[str, Any]] = {}
    for made in all_forms(host.store.index):
        recipe = json.loads(made.recipe)
        form = {key: recipe.get(key) for key in ("dtype", "format", "opset")}
        # An external-data split's files: which file of the split each one is.
        if recipe.get("external_data"):
            form |= {"external_data": True, "file": recipe.get("file", "model.onnx")}
        forms[made.form] = {"derived_from": made.source.hex, "representation": form}
    for digest, (source, declared_form) in all_declared(host.store.index).items():
        forms.setdefault(digest, declared_extras(declared_form, source))

    def render(record: ModelRecord) -> dict[str, Any]:
        return record.manage_info() | forms.get(record.digest, {}) | disk_info(host, record)

    return render


def disk_info(host: Host, record: ModelRecord) -> dict[str, Any]:
    """For a stored file kept as segments: the bytes on disk only it holds and those it
    shares with other stored files (held once for all), as `webmodels du --models`."""
    if not record.stored or record.preinstalled_path is not None:
        return {}
    with host.store.index.snapshot() as db:
        usage = file_usage(db, record.digest, record.size)
    if not usage.segmented:
        return {}
    return {"disk": {"own_bytes": usage.own, "shared_bytes": usage.shared}}


def declared_form(host: Host, call: Call, given: Candidate) -> DeclaredForm | None:
    """The form the call asked for when ``given``'s catalog declares it (then it is
    loaded as its own file, never derived); None otherwise."""
    recipe = requested(call)
    return None if recipe is None else declared(host.store.index, given, recipe)


def declared_by_hash(host: Host, call: Call, digest: Digest | None) -> DeclaredForm | None:
    """For a load by hash: the form the call asked for when a catalog in force declares
    it for the model ``digest`` (loaded as its own file, never derived); None otherwise."""
    recipe = requested(call)
    if recipe is None or digest is None:
        return None
    return declared_for(host.store.index, digest, recipe)


def declared_extras(form: DeclaredForm, of: Digest) -> dict[str, Any]:
    """What the answer says of a declared form: its recipe, that its catalog made it,
    and the model ``of`` which it is a form."""
    representation = {"dtype": form.dtype, "format": form.format, "opset": form.opset}
    return {"representation": representation | {"source": SOURCE}, "derived_from": of.hex}


@dataclass(frozen=True, slots=True)
class Chosen:
    """The model a session runs in the form asked, and what its answer says of it."""

    record: ModelRecord
    wire: dict[str, Any]
    # How the runtime loads it: "ort" only for a form the host made in ONNX Runtime's
    # format or one a catalog declares so (`record_format`); any other file, whatever
    # its bytes, is loaded and checked as ONNX.
    model_format: str

    def to_wire(self) -> dict[str, Any]:
        return self.wire


def chosen(host: Host, record: ModelRecord) -> Chosen:
    """A session over ``record`` as it is (a stored form asked by its own hash)."""
    return _as_stored(record_format(host.store, record), {})


def _as_stored(record: ModelRecord, wire: dict[str, Any]) -> Chosen:
    return Chosen(record, wire, "ort" if record.format == "ort" else "onnx")


def form_now(host: Host, call: Call, record: ModelRecord) -> Chosen | None:
    """The form the call asked for (for `sessions.create`, which waits for its session
    anyway): one its catalog declares (downloaded now when the caller does not hold it
    yet, as `models.load` fetches it); else derived in this thread when needed. None
    when it asked none."""
    recipe = requested(call)
    if recipe is None:
        return None
    if recipe.external_data:
        raise HostError(
            "bad_request",
            "a session of an external-data split runs over its files: load it (models.load "
            "with this representation), then create the session with those files",
            field="representation.external_data",
        )
    form = declared_for(host.store.index, record.digest, recipe)
    if form is not None:
        held = host.commons.visible(form.digest, call.context) or _fetch(host, call, form)
        return _as_stored(record_format(host.store, held), declared_extras(form, record.digest))
    _room_for(host, call, record, recipe)
    partition = call.context.partition.key if call.context.partition is not None else None
    made = host.representations.form(
        record, recipe, partition=partition, visible=_visible(host, call)
    )
    # The host made and checked it in the recipe's format, even where the same bytes
    # were stored before as an opaque file.
    ort = made.record.format == "ort" or (
        made.provenance is not None and made.recipe.format == "ort"
    )
    return Chosen(made.record, made.to_wire(), "ort" if ort else "onnx")


def _fetch(host: Host, call: Call, form: DeclaredForm) -> ModelRecord:
    """The catalog's own file of a declared form the caller does not hold yet,
    downloaded now as `models.load` would (the download jobs, the caller's activation
    limit, quota and transfer scope; verified by its hash), waited for here like a
    derivation (never derived instead: a failed download is the answer)."""
    from webmodels.methods.page_downloads import download_file  # it imports this module

    if not form.urls:
        raise HostError("not_found", "this form's catalog gives no URL for its file")
    return download_file(host, call, form.digest, form.urls, form.size, page_chosen=False).result()


def _room_for(host: Host, call: Call, record: ModelRecord, recipe: Recipe) -> None:
    """`quota_exceeded` before any work when the partition has no room for a form
    (counted at the source's size, which no dtype here exceeds by much); the form is
    then one of the partition's holdings, like a download."""
    if recipe.for_source(record.metadata.opsets).identity:
        return
    quota_left(host, call, record.size)


def _visible(host: Host, call: Call) -> Callable[[Digest], bool]:
    def visible(digest: Digest) -> bool:  # as `models.load` sees (commons/gate.py)
        return host.commons.visible(digest, call.context) is not None

    return visible


def in_form(host: Host, call: Call, record: ModelRecord, make: Make) -> Future[Mapping[str, Any]]:
    """``make(form, extras)`` once the form the call asked for is there (derived on
    the host's derivation threads when needed, with ``representation.progress``
    events); ``extras`` is what the answer says of the form."""
    recipe = requested(call)
    assert recipe is not None
    _room_for(host, call, record, recipe)
    derive_ahead(host, call, record)  # of the source: the answer's own form is not one
    partition = call.context.partition.key if call.context.partition is not None else None

    def stage(name: str) -> None:
        call.emit("representation.progress", {"stage": name})

    derived = host.representations.submit(
        record, recipe, partition=partition, visible=_visible(host, call), stage=stage
    )
    answer: Future[Mapping[str, Any]] = Future()

    def done(source: Future[Form]) -> None:
        # Raised here, an exception would be dropped by the Future and the request
        # never answered: it goes to the reply instead.
        try:
            form = source.result()
            if partition is not None and form.provenance is not None:
                # A shared form (of a common model) becomes this partition's to read.
                host.store.record_use(form.record.digest, partition)
            made = make(form.record, form.to_wire())
        except Exception as failure:
            answer.set_exception(failure)
        else:
            answer.set_result(made)

    derived.add_done_callback(done)
    return answer


def after(
    host: Host, call: Call, future: Future[ModelRecord], make: Make
) -> Future[Mapping[str, Any]]:
    """`in_form` of the model a download (``future``) brings."""
    answer: Future[Mapping[str, Any]] = Future()

    def copy(inner: Future[Mapping[str, Any]]) -> None:
        exc = inner.exception()
        if exc is not None:
            answer.set_exception(exc)
        else:
            answer.set_result(inner.result())

    def downloaded(source: Future[ModelRecord]) -> None:
        try:
            in_form(host, call, source.result(), make).add_done_callback(copy)
        except Exception as failure:  # the download's own error, or a bad recipe
            answer.set_exception(failure)

    future.add_done_callback(downloaded)
    return answer

"""A page's load of a model of several files that it does not hold yet: ``{files}``
whose entries carry their own URLs (``{path: {sha256, url, size}}``), or a name whose
catalog entry lists ``files``.

Every file the page may not see is a page download of its own (methods/models.py
``download``: verified, in the page's own job scope, its URLs limited to what the page
could fetch when the page chose them), one job per hash. Before any transfer the whole
model is judged: the sum of the files to download against the bytes a page may start
without a user gesture, and against the partition's quota (``quota_exceeded`` with the
model's total as ``needed``, nothing fetched). While they run the page gets one
progress stream for the model (fetch/set_progress.py: sums over the files, plus which
file moved), tagged with its own request only. A failed file fails the load, naming
the file (``details.file``: for a page, only the key it gave the file itself); the
model's other transfers are cancelled. Files the page already sees are
not fetched again.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webmodels.digest import Digest
from webmodels.dispatch import Call, Result
from webmodels.errors import HostError
from webmodels.fetch.set_progress import FileProgress, SetProgress
from webmodels.manifests.pending import remember
from webmodels.manifests.pulling import FileSource
from webmodels.manifests.values import Entry, build_manifest, check_path
from webmodels.methods import model_sets
from webmodels.methods.page_downloads import activation_limit, partition_key
from webmodels.naming.resolve import Candidate
from webmodels.query import ModelQuery
from webmodels.store.records import ModelRecord

if TYPE_CHECKING:
    from webmodels.app import Host

# One file's download for this call: (hash, URLs, size, progress) → its stored model.
Download = Callable[[Digest, tuple[str, ...], int | None, FileProgress], Future[ModelRecord]]
Room = Callable[[int], object]  # `quota_exceeded` when the partition cannot take that many


@dataclass(frozen=True, slots=True)
class SetFile:
    path: str
    digest: Digest
    urls: tuple[str, ...]
    size: int | None
    role: str | None = None


def page_set(value: object) -> list[SetFile] | None:
    """The files of ``{files}`` when any names a URL (a download); None otherwise (the
    files must be held: methods/model_sets.py)."""
    if not isinstance(value, Mapping) or not any(
        isinstance(ref, Mapping) and ("url" in ref or "urls" in ref) for ref in value.values()
    ):
        return None
    files = []
    for path, ref in value.items():
        check_path(path)
        try:
            files.append(_set_file(path, ref))
        except HostError as exc:
            raise _named(exc, path) from None
    return files


def _set_file(path: str, ref: object) -> SetFile:
    if not isinstance(ref, Mapping):
        raise HostError("bad_request", "params.query.files: each file is an object")
    digest = Digest.parse(ref.get("sha256"), field="files")
    if "url" not in ref and "urls" not in ref:
        return SetFile(path, digest, (), None)
    # The URL and size rules of a one-file load (query.py).
    fields = {k: v for k, v in ref.items() if k in ("url", "urls", "size")}
    query = ModelQuery.parse(fields | {"integrity": digest.integrity})
    return SetFile(path, digest, query.urls, query.size)


def catalog_files(host: Host, candidate: Candidate) -> list[SetFile]:
    """The files of the catalog entry ``candidate`` stands for ([] for one file)."""
    for catalog in host.names.catalogs():
        if candidate.source != f"catalog:{catalog.name}":
            continue
        for entry in catalog.entries:
            if entry.digest == candidate.digest and entry.files:
                return [SetFile(f.path, f.digest, (f.url,), f.size, f.role) for f in entry.files]
    return []


def availability(host: Host, call: Call, files: Sequence[SetFile]) -> str:
    """``available`` when the page sees every file, ``downloading`` when one is being
    downloaded for its own partition (never another site's), else ``downloadable``."""
    seen = [host.commons.visible(f.digest, call.context) for f in files]  # all, then judge
    if all(record is not None for record in seen):
        return "available"
    key = partition_key(call)
    if any(host.jobs.downloading(f.digest, key) for f in files):
        return "downloading"
    return "downloadable" if all(f.urls for f in files) else "unavailable"


def load_set(
    host: Host,
    call: Call,
    files: Sequence[SetFile],
    *,
    download: Download,
    room: Room,
    describe: Callable[[], Mapping[str, Any] | None],
    label: tuple[str, str] | None = None,
    page_keys: bool = False,
) -> Result:
    """Download what the page does not see yet, then the reply ``describe()`` makes:
    ``model_sets.load_files`` of a ``{files}`` query it gives, or its own reply
    (None: `not_found`). A failure names its file (``details.file``) for the user's
    callers, and for a page only when ``page_keys``: the paths are the page's own keys."""
    echo = page_keys or call.context.trusted

    def named(failure: BaseException, path: str) -> BaseException:
        return _named(failure, path, detail=echo)  # the message (the log) names it always

    def made() -> Mapping[str, Any]:
        given = describe()
        if given is None:
            raise HostError("not_found", "no such model is available to this site")
        return {"model": model_sets.load_files(host, call, given)} if "files" in given else given

    seen = [host.commons.visible(f.digest, call.context) for f in files]  # all, then judge
    wanted: dict[Digest, SetFile] = {}
    for file, record in zip(files, seen, strict=True):
        if record is None and file.digest not in wanted:
            wanted[file.digest] = file
    if not wanted:
        return made()
    unfetchable = [f.path for f in wanted.values() if not f.urls]
    if unfetchable:
        absent = HostError("not_found", "no such model is available to this site")
        raise named(absent, unfetchable[0])
    _check_whole(call, host, list(wanted.values()), room)
    # For the user's lists (`webmodels jobs`, the popup): these jobs are one model.
    sources = [FileSource(f.path, f.digest, f.urls, f.size, f.role) for f in wanted.values()]
    name, version = label if label is not None else (None, None)
    remember(host.store, sources, name=name, version=version, page=True)
    progress = SetProgress(
        lambda event: call.emit("download.progress", event),
        {f.path: f.size for f in wanted.values()},
    )
    started: dict[str, Future[ModelRecord]] = {}
    for file in wanted.values():
        try:
            started[file.path] = download(
                file.digest, file.urls, file.size, progress.for_file(file.path)
            )
        except BaseException as exc:
            _cancel(host, call)
            raise named(exc, file.path) from None
    reply = _when_all(host, call, started, made, named)
    reply.add_done_callback(lambda _: progress.close())  # no event after the reply
    return reply


def _check_whole(call: Call, host: Host, wanted: Sequence[SetFile], room: Room) -> None:
    """The model judged whole before any transfer: its declared sizes summed."""
    needed = sum(f.size or 0 for f in wanted)
    limit = activation_limit(call, host.config.download_without_activation_bytes)
    if limit is not None and needed > limit:
        raise HostError(
            "user_activation_required",
            f"a download of more than {limit} bytes needs a user gesture on the page "
            f"(this model's {len(wanted)} files need {needed})",
            limit=limit,
        )
    try:
        room(needed)
    except HostError as exc:
        if exc.code != "quota_exceeded":
            raise
        raise HostError(
            "quota_exceeded",
            f"the model's {len(wanted)} files need {needed} bytes, more than this site "
            "may store; nothing was downloaded",
            needed=needed,
        ) from None


def _when_all(
    host: Host,
    call: Call,
    started: Mapping[str, Future[ModelRecord]],
    describe: Callable[[], Mapping[str, Any]],
    named: Callable[[BaseException, str], BaseException],
) -> Future[Mapping[str, Any]]:
    """One reply for the model: ``describe()`` once every file is stored, else the first
    failure, ``named`` after its file (the other transfers then stop)."""
    out: Future[Mapping[str, Any]] = Future()
    left = set(started)
    lock = threading.Lock()  # files end on their own job threads

    def ended(path: str, done: Future[ModelRecord]) -> None:
        failure: BaseException | None = (
            HostError("cancelled", "the load was cancelled") if done.cancelled() else None
        )
        failure = failure or done.exception()
        with lock:
            if out.done() or not (failure is not None or left == {path}):
                left.discard(path)
                return
            left.discard(path)
            if failure is not None:
                out.set_exception(named(failure, path))
                if not done.cancelled():  # a cancel (models.cancel) drops them all itself
                    # Not on this job's thread: cancelling takes the jobs' locks.
                    threading.Thread(target=_cancel, args=(host, call), daemon=True).start()
                return
            try:
                made = describe()
            except Exception as exc:  # the reply carries it
                out.set_exception(exc)
            else:
                out.set_result(made)

    for path, future in started.items():
        future.add_done_callback(functools.partial(ended, path))
    return out


def _named(failure: BaseException, path: str, *, detail: bool = True) -> BaseException:
    """``failure`` naming the file ``path`` in its message and, with ``detail``, in
    ``details.file``; anything but a HostError goes on as it is (the dispatcher logs it
    and answers `internal`)."""
    if not isinstance(failure, HostError):
        return failure
    details = {**failure.details, "file": path} if detail else failure.details
    return HostError(failure.code, f"{path}: {failure.message}", **details)


def _cancel(host: Host, call: Call) -> None:
    """Drop this call's requests for the model's files (each job stops when nobody else
    waits for it)."""
    while host.jobs.cancel(str(call.request_id), partition=partition_key(call)):
        pass


def catalog_model(
    host: Host, call: Call, files: Sequence[SetFile], candidate: Candidate
) -> dict[str, Any] | None:
    """The catalog entry's model once the page sees every file (None: not so), with
    the catalog's roles, checked as a stored manifest is. No manifest is saved: its
    row would tell the next site, by the time its name takes, that a site loaded it."""
    seen = [host.commons.visible(f.digest, call.context) for f in files]  # all, then judge
    if any(record is None for record in seen):
        return None
    entries = [
        Entry(f.path, f.digest, record.size, f.role or "other")
        for f, record in zip(files, seen, strict=True)
        if record is not None
    ]
    manifest = build_manifest(entries)
    graphs = manifest.graphs()
    graph = graphs[0].path if len(graphs) == 1 else None
    model = model_sets.loaded_set(host, call, manifest, graph=graph)
    name, version = str(candidate.name), str(candidate.version)
    return {"model": {**model, "name": name, "version": version, "substituted": False}}

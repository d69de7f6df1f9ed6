"""``webmodels pull`` of a model made of several files: several URLs with their
SHA-256s, or a catalog entry that lists ``files``. Each file is downloaded by the
store's download jobs (fetch/jobs.py: verified before it is stored, resumed with HTTP
ranges after a cut or a killed process, one transfer per hash), up to ``PARALLEL`` at
once; a file already stored is not downloaded again. Before any transfer the whole
model is checked against the store's quota and the disk's free space (the sum of the
files not yet stored): a model that cannot fit is refused whole, nothing downloaded.
Once every file is stored, roles are
decided (the ones given, else as `import` decides them: a graph is an ONNX file the
store parsed, the files its locations name are its external data), every graph's
external-data locations are checked against the files (``model_unsafe``), and the
manifest is saved.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest
from webmodels.manifests.graph import graph_locations, match_locations
from webmodels.manifests.importing import role_by_name
from webmodels.manifests.values import Entry, Manifest, build_manifest, check_path
from webmodels.store.blobs import reserve_for
from webmodels.store.manifests import save_manifest
from webmodels.store.quotas import jobs_in_flight, total_usage
from webmodels.store.records import ModelRecord
from webmodels.store.store import Store

PARALLEL = 3  # files of one model downloaded at once

FileProgress = Callable[[int, int | None], None]  # (loaded, total) of one file


@dataclass(frozen=True, slots=True)
class FileSource:
    """One file of a model to pull: where it goes in the model, and where it comes from."""

    path: str
    digest: Digest
    urls: tuple[str, ...]
    size: int | None = None
    role: str | None = None  # None: decided from the stored file


def sources_from_urls(
    urls: Sequence[str], digests: Sequence[Digest], paths: Sequence[str] = ()
) -> list[FileSource]:
    """``pull URL1 URL2 --sha256 H1 --sha256 H2 [--path P1 --path P2]``: paths are the
    URLs' file names unless given."""
    if len(digests) != len(urls):
        raise HostError("bad_request", f"give one --sha256 per URL ({len(urls)} URLs)")
    if paths and len(paths) != len(urls):
        raise HostError("bad_request", f"give one --path per URL ({len(urls)} URLs), or none")
    chosen = list(paths) or [_file_name(url) for url in urls]
    return [
        FileSource(check_path(path, field="path"), digest, (url,))
        for path, digest, url in zip(chosen, digests, urls, strict=True)
    ]


def check_paths(sources: Sequence[FileSource]) -> None:
    """Paths checked (duplicates, folders) before any transfer."""
    build_manifest(Entry(s.path, s.digest, s.size or 0, s.role or "other") for s in sources)


def missing(store: Store, sources: Sequence[FileSource]) -> list[FileSource]:
    """The files not yet stored (each hash once)."""
    seen: set[Digest] = set()
    wanted = []
    for source in sources:
        record = store.get(source.digest)
        if source.digest not in seen and (record is None or not record.servable):
            seen.add(source.digest)
            wanted.append(source)
    return wanted


def check_room(store: Store, sources: Sequence[FileSource], *, quota: int | None) -> None:
    """Refuse the whole model before any transfer when the files not yet stored (their
    declared sizes, else the sizes their servers announce) exceed the store's quota or
    the disk's free space (with a reserve)."""
    wanted = missing(store, sources)
    needed = sum(s.size for s in wanted if s.size is not None)
    needed += sum(announced_sizes([s for s in wanted if s.size is None]))
    if needed == 0:
        return
    if quota is not None:
        used = total_usage(store.index) + jobs_in_flight(store.index).size
        if used + needed > quota:
            raise HostError(
                "quota_exceeded",
                f"the model needs {_mib(needed)} not yet stored, but the store's quota "
                f"(quota_total_bytes, {_mib(quota)}) leaves {_mib(max(0, quota - used))}; "
                "nothing was downloaded",
                needed=needed,
                quota=quota,
            )
    free = shutil.disk_usage(store.root).free
    if free < needed + reserve_for(needed):
        raise HostError(
            "disk_full",
            f"the model needs {_mib(needed)} not yet stored, but the disk holding the "
            f"store has {_mib(free)} free (with a reserve); nothing was downloaded",
            needed=needed,
            free=free,
        )


def announced_sizes(sources: Sequence[FileSource]) -> list[int]:
    """The Content-Length a HEAD of each file's first URL announces (0 where it says
    none or fails: that file's own job checks the disk again when its size is known)."""
    if not sources:
        return []
    from webmodels.fetch.session import new_session

    sizes = []
    with new_session() as session:
        for source in sources:
            try:
                reply = session.head(source.urls[0], allow_redirects=True, timeout=10)
                length = reply.headers.get("Content-Length", "") if reply.ok else ""
            except OSError:
                length = ""
            sizes.append(int(length) if length.isdigit() else 0)
    return sizes


def pull_files(
    store: Store,
    sources: Sequence[FileSource],
    *,
    waiter: str,
    progress_for: Callable[[FileSource], FileProgress | None] = lambda _: None,
    manager: JobManager | None = None,
    quota: int | None = None,
) -> dict[str, ModelRecord]:
    """Every file stored (downloaded unless it already is, ``PARALLEL`` at once), by path."""
    check_paths(sources)
    check_room(store, sources, quota=quota)
    wanted = missing(store, sources)
    jobs = manager or JobManager(store)
    jobs.start()
    running: dict[Future[ModelRecord], FileSource] = {}
    try:
        for n, source in enumerate(wanted):
            if len(running) == PARALLEL:
                _first_done(running)
            request = DownloadRequest(
                digest=source.digest, urls=source.urls, waiter=f"{waiter}-{n}", size=source.size
            )
            running[jobs.request(request, progress_for(source))[1]] = source
        while running:
            _first_done(running)
    finally:
        jobs.close()
    stored = {}
    for source in sources:
        record = store.get(source.digest)
        assert record is not None and record.servable
        stored[source.path] = record
    return stored


def _first_done(running: dict[Future[ModelRecord], FileSource]) -> None:
    """Wait for one download to end; its error (a failed file fails the pull) raised."""
    done, _ = wait(running, return_when=FIRST_COMPLETED)
    for future in done:
        del running[future]
        future.result()


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB ({size} bytes)"


def save_pulled(
    store: Store,
    sources: Sequence[FileSource],
    stored: dict[str, ModelRecord],
    *,
    name: str | None,
    version: str | None,
) -> Manifest:
    """The manifest of the pulled files, checked and saved under ``name``/``version``."""
    locations: dict[str, frozenset[str]] = {}
    for source in sources:
        found = _graph(store, source, stored[source.path])
        if found is not None:
            locations[source.path] = found
    graphs = set(locations)
    named = {
        (PurePosixPath(path).parent / location).as_posix()
        for path, found in locations.items()
        for location in found
    }
    entries = [
        Entry(s.path, s.digest, stored[s.path].size, s.role or _role(s.path, graphs, named))
        for s in sources
    ]
    manifest = build_manifest(entries)
    for graph in manifest.graphs():
        match_locations(manifest, graph, locations.get(graph.path, frozenset()))
    save_manifest(store.index, manifest, name=name, version=version)
    if name is not None and version is not None:
        for graph in manifest.graphs():
            store.name_object(graph.digest, name, version)
    return manifest


def _graph(store: Store, source: FileSource, record: ModelRecord) -> frozenset[str] | None:
    """A graph's external-data locations; None for a file that is no graph (a role
    given says so; else an ``.onnx`` file the capped reader parses is one)."""
    if source.role not in (None, "graph"):
        return None
    if source.role is None and not source.path.lower().endswith(".onnx"):
        return None
    try:
        return graph_locations(store.locate(record.digest).path)
    except HostError as exc:
        if source.role == "graph" or exc.code != "model_invalid":
            raise
        return None  # an .onnx name but no readable graph: a plain file


def _role(path: str, graphs: set[str], named: set[str]) -> str:
    if path in graphs:
        return "graph"
    return "external_data" if path in named else role_by_name(path)


def _file_name(url: str) -> str:
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    if not name:
        raise HostError("bad_request", f"{url} names no file; give --path for it")
    return name

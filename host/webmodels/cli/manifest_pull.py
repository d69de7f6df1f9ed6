"""``webmodels pull`` of a model made of several files (manifests/pulling.py): several
URLs (``pull URL1 URL2 --sha256 H1 --sha256 H2 --name pub/model@1.0.0``) or a catalog
entry that lists ``files``. Up to three files download at once; progress: one line per
file and one for the whole model (on a terminal); a pull that was cut resumes where it
stopped. ``--background`` records a download job per file and the set
(manifests/pending.py), then returns: the detached runner saves the manifest once the
last file is stored."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.progress import Progress, TaskID

from webmodels.catalogs.documents import CatalogEntry
from webmodels.cli.main import CliContext
from webmodels.cli.output import _progress, format_table, human_bytes, print_json
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest, JobOptions
from webmodels.manifests.pending import remember, settle_pending
from webmodels.manifests.pulling import (
    FileProgress,
    FileSource,
    check_paths,
    check_room,
    missing,
    pull_files,
    save_pulled,
    sources_from_urls,
)
from webmodels.manifests.values import Manifest
from webmodels.naming.versions import ModelName, Version, VersionError
from webmodels.store import Store


class ModelProgress:
    """A line per file and one for the whole model, on stderr when it is a terminal."""

    def __init__(self, sources: Sequence[FileSource]) -> None:
        self.enabled = sys.stderr.isatty()
        self.sizes = {s.path: s.size for s in sources}
        self.done: dict[str, int] = {}
        self._progress: Progress | None = _progress(sys.stderr) if self.enabled else None
        self._model: TaskID | None = None
        if self._progress is not None:
            self._progress.start()
            total = sum(s.size or 0 for s in sources) or None
            self._model = self._progress.add_task(f"{len(sources)} files", total=total)

    def for_file(self, source: FileSource) -> FileProgress | None:
        if self._progress is None:
            return None
        progress, task = self._progress, self._progress.add_task(source.path, total=source.size)

        def update(loaded: int, total: int | None) -> None:
            self.done[source.path] = loaded
            progress.update(task, completed=loaded, total=total)
            if self._model is not None:
                progress.update(self._model, completed=sum(self.done.values()))

        return update

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def cmd_pull_files(args: argparse.Namespace, ctx: CliContext) -> int:
    if args.integrity or args.mirror:
        raise HostError(
            "bad_request",
            "a model of several files takes --sha256 per URL (no --integrity or --mirror)",
        )
    name, version = _label(args.name)
    digests = [Digest.parse(text, field="--sha256") for text in args.sha256 or ()]
    sources = sources_from_urls(args.url, digests, args.path or ())
    with Store.open(ctx.config) as store:
        if args.background:
            return pull_in_background(store, ctx, sources, name=name, version=version)
        manifest = pull_model(store, ctx, sources, name=name, version=version)
    return report(ctx, manifest, name=name, version=version)


def pull_catalog_files(
    store: Store, ctx: CliContext, entry: CatalogEntry, *, background: bool = False
) -> int:
    """A catalog entry that lists ``files``: all of them, then its manifest."""
    sources = [FileSource(f.path, f.digest, (f.url,), f.size, f.role) for f in entry.files]
    name, version = str(entry.name), str(entry.version)
    if background:
        return pull_in_background(store, ctx, sources, name=name, version=version)
    manifest = pull_model(store, ctx, sources, name=name, version=version)
    return report(ctx, manifest, name=name, version=version)


def pull_model(
    store: Store,
    ctx: CliContext,
    sources: Sequence[FileSource],
    *,
    name: str | None,
    version: str | None,
) -> Manifest:
    bars = ModelProgress(sources)
    try:
        stored = pull_files(
            store,
            sources,
            waiter=f"cli-{os.getpid()}",
            progress_for=bars.for_file,
            manager=_manager(store, ctx),
            quota=ctx.config.quota_total_bytes,
        )
    finally:
        bars.close()
    return save_pulled(store, sources, stored, name=name, version=version)


def pull_in_background(
    store: Store,
    ctx: CliContext,
    sources: Sequence[FileSource],
    *,
    name: str | None,
    version: str | None,
) -> int:
    """The room checked for the whole model, the set remembered, a background job per
    file not yet stored, then a detached runner (which saves the manifest at the end)."""
    from webmodels.cli.fetch_cmd import _spawn_runner

    check_paths(sources)
    check_room(store, sources, quota=ctx.config.quota_total_bytes)
    pending = remember(store, sources, name=name, version=version)
    manager = _manager(store, ctx)
    jobs = [
        manager.join(
            DownloadRequest(digest=s.digest, urls=s.urls, waiter="", size=s.size, background=True)
        )
        for s in missing(store, sources)
    ]
    if jobs:
        _spawn_runner(ctx)
    else:
        settle_pending(store)
    if ctx.json:
        print_json({"jobs": jobs, "background": True, "model": pending})
    elif not jobs:
        print("every file is already stored; the model is saved")
    else:
        print(
            f"downloading {len(jobs)} files in the background (jobs "
            f"{', '.join(j[:8] for j in jobs)}); see `webmodels jobs`"
        )
    return 0


def _manager(store: Store, ctx: CliContext) -> JobManager:
    return JobManager(store, JobOptions(mirrors=ctx.config.mirrors))


def report(ctx: CliContext, manifest: Manifest, *, name: str | None, version: str | None) -> int:
    if ctx.json:
        print_json(
            {"result": "pulled", "name": name, "version": version, "manifest": manifest.to_json()}
        )
        return 0
    rows = [(e.digest.short, e.path, e.role, human_bytes(e.size)) for e in manifest.entries]
    print(format_table(["SHA256", "PATH", "ROLE", "SIZE"], rows))
    label = f"{name}@{version}" if name else manifest.digest.short
    print(f"pulled {label}: {len(manifest.entries)} files, {human_bytes(manifest.size)}")
    return 0


def _label(text: str | None) -> tuple[str | None, str | None]:
    """``--name pub/model@1.0.0``: a name and an exact version (the catalogs' rules)."""
    if text is None:
        return None, None
    name, _, version = text.partition("@")
    try:
        return str(ModelName.parse(name)), str(Version.parse(version)) if version else None
    except VersionError as exc:
        raise HostError("bad_request", f"--name {text!r}: {exc}") from exc

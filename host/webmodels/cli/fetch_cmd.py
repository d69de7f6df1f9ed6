"""``webmodels pull`` (download a model into the store) and ``webmodels jobs``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from webmodels.catalogs import keeper
from webmodels.catalogs.documents import CatalogEntry
from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest, JobOptions
from webmodels.naming.resolve import SUBSTITUTE, Candidate, NameQuery
from webmodels.naming.sources import record_request
from webmodels.query import ModelQuery
from webmodels.store import Store
from webmodels.store.records import ModelRecord

RUNNER_IDLE_S = 2.0


def register(sub: Any) -> None:
    pull = sub.add_parser(
        "pull",
        help="download a model into the store (resumable, verified)",
        description="Download a model by URL and its SHA-256, or by name and version "
        "range from the configured catalogs (e.g. pub/model@^1). Interrupted downloads "
        "resume; nothing is stored unless the bytes match.",
    )
    pull.add_argument(
        "url",
        nargs="+",
        metavar="URL|NAME@RANGE",
        help="where to download from (several URLs: the files of one model), or a catalog name",
    )
    digest = pull.add_mutually_exclusive_group()
    digest.add_argument(
        "--sha256", action="append", help="the model's SHA-256 (hex); one per URL, in order"
    )
    digest.add_argument("--integrity", help="Subresource Integrity: sha256-<base64>")
    pull.add_argument("--mirror", action="append", default=[], help="another URL (repeatable)")
    pull.add_argument("--size", type=int, help="expected size in bytes")
    pull.add_argument(
        "--name",
        metavar="PUB/MODEL@VERSION",
        help="store the URLs' files as one model of several files under this name",
    )
    pull.add_argument(
        "--path",
        action="append",
        help="a file's path in the model, one per URL (default: the URL's file name)",
    )
    pull.add_argument(
        "--substitute",
        choices=SUBSTITUTE,
        default="none",
        help="by name: accept an older version in range (compatible) or an equivalent "
        "already stored",
    )
    pull.add_argument(
        "--format",
        choices=("onnx",),
        help="refuse a download that is not a valid model of this format",
    )
    pull.add_argument(
        "--background",
        action="store_true",
        help="return at once; the download goes on in the background until done",
    )
    pull.set_defaults(func=cmd_pull)
    jobs = sub.add_parser("jobs", help="list downloads in progress and recently finished")
    jobs.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    jobs.set_defaults(func=cmd_jobs)


def _query(args: argparse.Namespace) -> ModelQuery:
    if not (args.sha256 or args.integrity):
        raise HostError("bad_request", "pulling a URL needs --sha256 or --integrity")
    digest = (
        Digest.parse(args.sha256, field="--sha256")
        if args.sha256
        else Digest.from_integrity(args.integrity)
    )
    raw = {"urls": [args.url, *args.mirror], "integrity": digest.integrity, "size": args.size}
    return ModelQuery.parse(raw)


def cmd_pull(args: argparse.Namespace, ctx: CliContext) -> int:
    if len(args.url) > 1 or args.name or args.path:  # the files of one model
        from webmodels.cli.manifest_pull import cmd_pull_files

        return cmd_pull_files(args, ctx)
    if args.sha256 is not None and len(args.sha256) > 1:
        raise HostError("bad_request", "give one --sha256 per URL")
    sha256 = args.sha256[0] if args.sha256 else None
    args = argparse.Namespace(**{**vars(args), "url": args.url[0], "sha256": sha256})
    scheme = urlsplit(args.url).scheme
    if scheme.lower() == "oci":  # an OCI registry: the manifest names every digest
        from webmodels.cli.oci_cmd import cmd_pull_oci

        return cmd_pull_oci(args, ctx)
    if not scheme:
        return _pull_named(args, ctx)
    if scheme.lower() not in ("http", "https"):
        raise HostError(
            "bad_request",
            f"{args.url}: the scheme {scheme}:// is not supported "
            "(pull downloads http:// and https:// URLs, or PUB/MODEL@RANGE by name)",
        )
    query = _query(args)
    assert query.digest is not None
    with Store.open(ctx.config) as store:
        record = store.get(query.digest)
        if record is not None and record.servable:
            note = check_format(store, record, args, new=False)
            return _report(ctx, record.manage_info(), "already stored", note)
        manager = _manager(store, ctx)
        request = DownloadRequest(
            digest=query.digest,
            urls=query.urls,
            waiter=f"cli-{os.getpid()}",
            size=query.size,
            background=args.background,
        )
        if args.background:
            job_id = _start_background(manager, request, ctx)
            if ctx.json:
                print_json({"job": job_id, "background": True})
            else:
                print(f"downloading in the background (job {job_id[:8]}); see `webmodels jobs`")
            return 0
        record = _pull_foreground(manager, request)
        note = check_format(store, record, args, new=True)
        return _report(ctx, record.manage_info(), "downloaded", note)


def _manager(store: Store, ctx: CliContext) -> JobManager:
    """The job manager of a CLI command: its downloads try the configured mirrors."""
    return JobManager(store, JobOptions(mirrors=ctx.config.mirrors))


def check_format(store: Store, record: ModelRecord, args: argparse.Namespace, *, new: bool) -> str:
    """A note when a file named ``.onnx`` is no valid ONNX model (pages may store any
    file, so it is kept as an opaque one); with ``--format onnx`` a refusal, and a file
    this pull brought that nobody else uses is removed again."""
    wants_onnx = args.format == "onnx"
    if record.format == "onnx" or not (wants_onnx or _named_onnx(args.url)):
        return ""
    reason = _onnx_problem(store, record)
    if not wants_onnx:
        return f"not a valid ONNX model ({reason}); stored as an opaque file"
    if new and not (record.sites or record.shared_with or record.pinned):
        store.delete(record.digest)
    raise HostError("model_invalid", f"{args.url} is not a valid ONNX model: {reason}")


def _named_onnx(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".onnx")


def _onnx_problem(store: Store, record: ModelRecord) -> str:
    from webmodels.store.metadata import read_onnx_metadata

    try:
        read_onnx_metadata(store.files.path_of(record.digest))
    except HostError as exc:
        return exc.message
    return f"stored as {record.format}"


def _pull_named(args: argparse.Namespace, ctx: CliContext) -> int:
    from webmodels.cli.catalog_cmd import parse_spec, resolve_as_user

    spec = parse_spec(args.url)
    query = NameQuery(spec.name, spec.range, args.substitute)
    with Store.open(ctx.config) as store:
        choice = resolve_as_user(store, query)
        record_request(store, partition="", query=query)  # `webmodels update` follows it
        given = choice.candidate
        label = f"{given.name}@{given.version}"
        files = _catalog_files(store, given)
        if files is not None:  # a model of several files
            from webmodels.cli.manifest_pull import pull_catalog_files

            return pull_catalog_files(store, ctx, files, background=args.background)
        if choice.visible:
            record = store.get(given.digest)
            assert record is not None
            what = f"already stored ({label}{', substituted' if choice.substituted else ''})"
            return _report(ctx, record.manage_info(), what)
        if not given.urls and not ctx.config.mirrors:  # else the mirrors, by its sha256
            raise HostError("not_found", f"{label} has no download URL")
        request = DownloadRequest(
            digest=given.digest,
            urls=given.urls,
            waiter=f"cli-{os.getpid()}",
            size=given.size,
            background=args.background,
        )
        manager = _manager(store, ctx)
        if args.background:
            job_id = _start_background(manager, request, ctx)
            print_json({"job": job_id, "background": True}) if ctx.json else print(
                f"downloading {label} in the background (job {job_id[:8]})"
            )
            return 0
        record = _pull_foreground(manager, request)
        store.name_object(given.digest, str(given.name), str(given.version))
        return _report(ctx, record.manage_info(), "downloaded")


def _catalog_files(store: Store, given: Candidate) -> CatalogEntry | None:
    """The catalog entry of ``given`` when it lists several files."""
    if not given.source.startswith("catalog:"):
        return None
    catalog = given.source.removeprefix("catalog:")
    for found in keeper.in_force(store.index, datetime.now(UTC)):
        if found.name == catalog:
            for entry in found.entries:
                if (entry.name, entry.version) == (given.name, given.version) and entry.files:
                    return entry
    return None


def start_named_downloads(
    store: Store, ctx: CliContext, planned: Mapping[str, tuple[Candidate, list[str]]]
) -> None:
    """Background downloads for `webmodels update`, each credited to the sites (partition
    keys; "" for the user) that asked for its range, then a detached runner."""
    manager = _manager(store, ctx)
    for candidate, partitions in planned.values():
        for n, partition in enumerate(partitions):
            request = DownloadRequest(
                digest=candidate.digest,
                urls=candidate.urls,
                waiter=f"update-{os.getpid()}-{n}",
                partition=partition or None,
                size=candidate.size,
                background=True,
            )
            manager.join(request)
    _spawn_runner(ctx)


def _pull_foreground(manager: JobManager, request: DownloadRequest) -> ModelRecord:
    bar = ProgressBar(f"pulling {request.digest.short}", request.size)

    def progress(loaded: int, total: int | None) -> None:
        bar.total = total or bar.total
        bar.update(loaded)

    manager.start()
    try:
        _, future = manager.request(request, progress)
        try:
            while True:
                try:
                    record = future.result(timeout=0.2)
                    break
                except TimeoutError:
                    continue
        except KeyboardInterrupt:
            manager.cancel(request.waiter)
            raise
    finally:
        bar.close()
        manager.close()
    return record


def _start_background(manager: JobManager, request: DownloadRequest, ctx: CliContext) -> str:
    """Record the job, then hand it to a detached runner that outlives this command."""
    job_id = manager.join(dataclasses.replace(request, waiter=""))
    _spawn_runner(ctx)
    return job_id


def _spawn_runner(ctx: CliContext) -> None:
    """A detached `webmodels jobs --run` that outlives this command."""
    argv = [sys.executable, "-m", "webmodels", "--store", str(ctx.config.home)]
    if ctx.config.config_file is not None:
        argv += ["--config", str(ctx.config.config_file)]
    subprocess.Popen(
        [*argv, "jobs", "--run"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not killed with this terminal
    )


def _report(ctx: CliContext, info: dict[str, Any], what: str, note: str = "") -> int:
    if ctx.json:
        print_json({"result": what, "model": info, **({"note": note} if note else {})})
    else:
        print(f"{what}: {info['sha256']} ({human_bytes(info['size'])}, {info['format']})")
        if note:
            print(note)
    return 0


def cmd_jobs(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        manager = _manager(store, ctx)
        if args.run:
            return _run_pending(manager)
        from webmodels.manifests.job_sets import by_model, tag
        from webmodels.manifests.pending import settle_pending

        settle_pending(store)  # a model whose last file another process downloaded
        jobs = by_model(tag(store, manager.list_jobs()))
    if ctx.json:
        print_json(jobs)
        return 0
    if not jobs:
        print("no downloads")
        return 0
    rows = []
    for entry in jobs:
        if entry["kind"] == "model":  # a model of several files: one line, then its files
            rows.append(_model_row(entry))
            rows += [_job_row(f, indent=f"  {f['path']}: ") for f in entry["files"]]
        else:
            rows.append(_job_row(entry))
    print(format_table(["JOB", "SHA256", "STATE", "PROGRESS", "BACKGROUND", "ERROR", "URL"], rows))
    return 0


def _job_row(j: dict[str, Any], *, indent: str = "") -> tuple[str, ...]:
    return (
        j["id"][:8],
        j["sha256"][:12],
        _state_text(j),
        _progress_text(j["loaded"], j["total"]),
        "yes" if j["background"] else "",
        (j["error"] or {}).get("code", ""),
        indent + (j["urls"] or ["(the mirrors)"])[0],
    )


def _model_row(entry: dict[str, Any]) -> tuple[str, ...]:
    label = f"{entry['name']}@{entry['version']}" if entry["name"] else "model"
    error = entry["error"] or {}
    return (
        entry["id"][:8],
        f"{label} ({entry['count']} files)",
        _state_text(entry),
        _progress_text(entry["loaded"], entry["total"]),
        "yes" if entry["background"] else "",
        f"{error['code']} ({error['file']})" if error else "",
        "",
    )


def _state_text(job: dict[str, Any]) -> str:
    if job["state"] != "active":
        return str(job["state"])
    if job.get("interrupted"):
        return "interrupted (will resume)"
    return "active (running)" if job["running"] else "active (waiting to start)"


def _progress_text(loaded: int, total: int | None) -> str:
    if not total:
        return human_bytes(loaded)
    return f"{human_bytes(loaded)} / {human_bytes(total)} ({loaded * 100 // total}%)"


def _run_pending(manager: JobManager) -> int:
    """The detached runner of `pull --background`: run active jobs until none is left."""
    from webmodels.manifests.pending import settle_pending

    manager.start()
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < RUNNER_IDLE_S:
            settle_pending(manager.store)  # models of several files whose last file landed
            if manager.resume_orphans() or manager.running():
                idle_since = time.monotonic()
            time.sleep(0.2)
    except HostError:
        return 1
    finally:
        manager.close()
        settle_pending(manager.store)
    return 0

"""``webmodels pull`` (download a model into the store) and ``webmodels jobs``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.jobs import JobManager
from webmodels.fetch.records import DownloadRequest
from webmodels.query import ModelQuery
from webmodels.store import Store

RUNNER_IDLE_S = 2.0


def register(sub: Any) -> None:
    pull = sub.add_parser(
        "pull",
        help="download a model into the store (resumable, verified)",
        description="Download a model by URL and its SHA-256. Interrupted downloads "
        "resume; nothing is stored unless the bytes match.",
    )
    pull.add_argument("url", help="where to download from")
    digest = pull.add_mutually_exclusive_group(required=True)
    digest.add_argument("--sha256", help="the model's SHA-256 (hex)")
    digest.add_argument("--integrity", help="Subresource Integrity: sha256-<base64>")
    pull.add_argument("--mirror", action="append", default=[], help="another URL (repeatable)")
    pull.add_argument("--size", type=int, help="expected size in bytes")
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
    digest = (
        Digest.parse(args.sha256, field="--sha256")
        if args.sha256
        else Digest.from_integrity(args.integrity)
    )
    raw = {"urls": [args.url, *args.mirror], "integrity": digest.integrity, "size": args.size}
    return ModelQuery.parse(raw)


def cmd_pull(args: argparse.Namespace, ctx: CliContext) -> int:
    query = _query(args)
    assert query.digest is not None
    with Store.open(ctx.config) as store:
        record = store.get(query.digest)
        if record is not None and record.servable:
            return _report(ctx, record.manage_info(), "already stored")
        manager = JobManager(store)
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
        return _pull_foreground(manager, request, ctx)


def _pull_foreground(manager: JobManager, request: DownloadRequest, ctx: CliContext) -> int:
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
    return _report(ctx, record.manage_info(), "downloaded")


def _start_background(manager: JobManager, request: DownloadRequest, ctx: CliContext) -> str:
    """Record the job, then hand it to a detached runner that outlives this command."""
    job_id = manager.join(dataclasses.replace(request, waiter=""))
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
    return job_id


def _report(ctx: CliContext, info: dict[str, Any], what: str) -> int:
    if ctx.json:
        print_json({"result": what, "model": info})
    else:
        print(f"{what}: {info['sha256']} ({human_bytes(info['size'])}, {info['format']})")
    return 0


def cmd_jobs(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        manager = JobManager(store)
        if args.run:
            return _run_pending(manager)
        jobs = manager.list_jobs()
    if ctx.json:
        print_json(jobs)
        return 0
    if not jobs:
        print("no downloads")
        return 0
    rows = [
        (
            j["id"][:8],
            j["sha256"][:12],
            j["state"] + (" (running)" if j["running"] else ""),
            _progress_text(j["loaded"], j["total"]),
            "yes" if j["background"] else "",
            (j["error"] or {}).get("code", ""),
            j["urls"][0],
        )
        for j in jobs
    ]
    print(format_table(["JOB", "SHA256", "STATE", "PROGRESS", "BACKGROUND", "ERROR", "URL"], rows))
    return 0


def _progress_text(loaded: int, total: int | None) -> str:
    if not total:
        return human_bytes(loaded)
    return f"{human_bytes(loaded)} / {human_bytes(total)} ({loaded * 100 // total}%)"


def _run_pending(manager: JobManager) -> int:
    """The detached runner of `pull --background`: run active jobs until none is left."""
    manager.start()
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < RUNNER_IDLE_S:
            if manager.resume_orphans() or manager.running():
                idle_since = time.monotonic()
            time.sleep(0.2)
    except HostError:
        return 1
    finally:
        manager.close()
    return 0

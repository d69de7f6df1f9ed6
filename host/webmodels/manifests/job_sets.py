"""Download jobs by model: the jobs of a model of several files (a set remembered by
manifests/pending.py: pulled in the background, or a page's load of several files)
listed as one entry.

``tag`` marks each job whose file belongs to a remembered set with ``model`` (the
set's id, name, version and the file's path): ``manage.jobs`` pages stay pages of
jobs, and the popup groups them. ``by_model`` turns a list of jobs into the entries
``webmodels jobs`` shows: one per set (``kind: "model"``: its files, each the newest
job of its hash; ``loaded``/``total`` summed; ``failed`` when a file failed, with that
file named in ``error.file``; ``active`` while any file is; else ``done``), and the
other jobs as they are (``kind: "job"``), in the order of each entry's newest job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webmodels.manifests.pending import remembered
from webmodels.store.store import Store

Job = dict[str, Any]


def tag(store: Store, jobs: Sequence[Mapping[str, Any]]) -> list[Job]:
    """``jobs``, each of a remembered set's file with ``model`` added."""
    members: dict[str, dict[str, Any]] = {}
    sets = sorted(remembered(store), key=lambda s: s[1].get("remembered_at", 0))
    for set_id, found in sets:  # oldest first: a file in several sets is the newest's
        for file in found["files"]:
            members[file["sha256"]] = {
                "id": set_id,
                "name": found.get("name"),
                "version": found.get("version"),
                "path": file["path"],
                "files": len(found["files"]),
            }
    return [
        {**job, "model": members[job["sha256"]]} if job["sha256"] in members else dict(job)
        for job in jobs
    ]


def by_model(jobs: Sequence[Job]) -> list[Job]:
    """One entry per set (its newest job per file), the other jobs as they are."""
    entries: list[Job] = []
    sets: dict[str, Job] = {}
    for job in jobs:  # newest first
        model = job.get("model")
        if model is None:
            entries.append({"kind": "job", **job})
            continue
        entry = sets.get(model["id"])
        if entry is None:
            entry = sets[model["id"]] = {
                "kind": "model",
                "id": model["id"],
                "name": model["name"],
                "version": model["version"],
                "count": model["files"],
                "files": [],
            }
            entries.append(entry)
        if all(f["sha256"] != job["sha256"] for f in entry["files"]):
            entry["files"].append({"path": model["path"], **_without(job, "model")})
    for entry in sets.values():
        entry.update(_summary(entry["files"]))
    return entries


def _summary(files: Sequence[Job]) -> Job:
    totals = [f["total"] for f in files]
    failed = next((f for f in files if f["state"] == "failed"), None)
    if failed is not None:
        state = "failed"
    elif any(f["state"] == "active" for f in files):
        state = "active"
    else:
        state = "done" if all(f["state"] == "done" for f in files) else files[0]["state"]
    error = None
    if failed is not None:
        error = {**(failed["error"] or {"code": "download_failed"}), "file": failed["path"]}
    return {
        "state": state,
        "loaded": sum(f["loaded"] or 0 for f in files),
        "total": None if any(t is None for t in totals) else sum(totals),
        "running": any(f.get("running") for f in files),
        "interrupted": any(f.get("interrupted") for f in files),
        "background": all(f.get("background") for f in files),
        "error": error,
        "updated_at": max(f.get("updated_at") or 0 for f in files),
    }


def _without(job: Job, key: str) -> Job:
    return {k: v for k, v in job.items() if k != key}

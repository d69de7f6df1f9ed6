"""Concurrency: hosts (`webmodels serve`, spoken to over their pipes) and CLI commands
writing, importing, deleting, pinning and collecting the same and different hashes at
once, for N rounds.

After each round, with every process idle: the store passes the checks of
stress_lib/checks.py (integrity, every blob re-hashes, one file per indexed hash,
nothing unindexed or left in tmp/), the model pinned before the run is still there and
every attempt to delete it was refused with ``model_pinned``, and no reply or CLI
output carried SQLite's own text (``database is locked``, ``OperationalError``) or an
``internal`` error.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from stress_lib.checks import Verdict, check_store
from stress_lib.crashes import _call, _cos_write, _env, _host
from stress_lib.operations import onnx_model
from webmodels.store.store import Store

# What SQLite says when it is not translated into a HostError on its way out.
LEAK = re.compile(r"database is (locked|busy)|OperationalError|sqlite3|Traceback", re.I)
# Refusals a concurrent user may rightly see: someone deleted it first, it is pinned.
EXPECTED = frozenset({"not_found", "model_pinned"})


@dataclass
class ConcurrencyFigures:
    rounds: int = 0
    processes: int = 0
    operations: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    leaked: list[str] = field(default_factory=list)
    lost: int = 0
    corrupted: int = 0
    example: str = ""


@dataclass
class _Round:
    """What the workers of one round saw; appended to from many threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    texts: list[str] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    pinned_deleted: list[str] = field(default_factory=list)
    operations: int = 0

    def saw(self, text: str, code: str | None = None) -> None:
        with self.lock:
            self.texts.append(text)
            self.operations += 1
            if code:
                self.codes[code] += 1


def _cli(home: Path, seen: _Round, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "webmodels", *args]
    run = subprocess.run(argv, env=_env(home), capture_output=True, text=True, timeout=120)
    seen.saw(run.stdout + run.stderr, None if run.returncode == 0 else f"exit {run.returncode}")
    return run


def _host_call(proc: subprocess.Popen[bytes], seen: _Round, method: str, **params: object) -> str:
    reply = _call(proc, 7, method, **params)
    code = None if reply.get("ok") else str(reply.get("error", {}).get("code"))
    seen.saw(json.dumps(reply), code)
    return code or "ok"


def _host_worker(
    proc: subprocess.Popen[bytes], seen: _Round, *, own: Path, shared: Path, pinned: str
) -> None:
    for model in (shared, own):
        _cos_write(proc, model.read_bytes(), [0])
        seen.saw("")
    own_hex = hashlib.sha256(own.read_bytes()).hexdigest()
    shared_hex = hashlib.sha256(shared.read_bytes()).hexdigest()
    _host_call(proc, seen, "manage.pin", sha256=own_hex, pinned=True)
    _host_call(proc, seen, "manage.pin", sha256=own_hex, pinned=False)
    _host_call(proc, seen, "manage.delete", sha256=shared_hex)
    if _host_call(proc, seen, "manage.delete", sha256=pinned) != "model_pinned":
        seen.pinned_deleted.append("manage.delete of the pinned model was not refused")


def _cli_worker(
    home: Path, seen: _Round, rng: random.Random, *, own: Path, shared: Path, pinned: str
) -> None:
    """One CLI command (a process start costs more than all a host's calls of a round)."""
    shared_hex = hashlib.sha256(shared.read_bytes()).hexdigest()
    action = rng.choice(["import", "import", "rm", "pin", "unpin", "gc", "rm-pinned"])
    if action == "import":
        _cli(home, seen, "import", str(shared), str(own))
    elif action == "rm-pinned":
        run = _cli(home, seen, "rm", pinned)
        if run.returncode == 0 or "pinned" not in run.stderr:
            seen.pinned_deleted.append(f"rm of the pinned model: {run.stderr.strip()[:200]}")
    elif action == "gc":
        _cli(home, seen, "gc")
    else:
        _cli(home, seen, action, shared_hex)


def _models(home: Path, *, workers: int, weight_bytes: int) -> tuple[list[Path], list[Path]]:
    """Two models every worker shares, one of each worker's own."""
    shared = [onnx_model(home / f"s{i}.onnx", weight_bytes=weight_bytes, seed=i) for i in range(2)]
    own = [
        onnx_model(home / f"u{i}.onnx", weight_bytes=weight_bytes, seed=100 + i)
        for i in range(workers)
    ]
    return shared, own


def _pin_one(home: Path, *, weight_bytes: int) -> str:
    """A model imported and pinned in this process, while the hosts start on the new
    store: their first opens race with each other and with this one."""
    keep = onnx_model(home / "pinned.onnx", weight_bytes=weight_bytes, seed=99)
    store = Store(home / "store-v2")
    pinned = store.import_file(keep).model.digest
    store.pin(pinned, True)
    store.close()
    return pinned.hex


def run_concurrency(
    *, processes: int, rounds: int, weight_bytes: int, seed: int = 17
) -> ConcurrencyFigures:
    """Three in four processes are hosts (kept for the whole run), the others CLI
    commands, one per round each."""
    rng = random.Random(seed)
    figures = ConcurrencyFigures(processes=processes)
    hosts_n = processes * 3 // 4
    with tempfile.TemporaryDirectory(prefix="wm-conc-") as tmp:
        home = Path(tmp)
        shared, own = _models(home, workers=processes, weight_bytes=weight_bytes)
        hosts = [_host(home) for _ in range(hosts_n)]  # on a store not made yet
        pinned = _pin_one(home, weight_bytes=weight_bytes)
        try:
            for n in range(rounds):
                seen = _Round()
                jobs: list[Callable[[], None]] = []
                for i, proc in enumerate(hosts):
                    models = {"own": own[i], "shared": shared[(i + n) % 2]}
                    jobs.append(partial(_host_worker, proc, seen, pinned=pinned, **models))
                for i in range(hosts_n, processes):
                    models = {"own": own[i], "shared": shared[(i + n) % 2]}
                    r = random.Random(rng.random())
                    jobs.append(partial(_cli_worker, home, seen, r, pinned=pinned, **models))
                _run_all(jobs, seen)
                figures.rounds += 1
                _check_round(home, seen, pinned, figures)
        finally:
            for proc in hosts:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=60)
    return figures


def _run_all(jobs: list[Callable[[], None]], seen: _Round) -> None:
    """Start every worker at once; a worker that raised is itself a finding."""

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as exc:  # reported as a finding below
            seen.saw(f"worker failed: {exc!r}", "worker_failed")

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _check_round(home: Path, seen: _Round, pinned: str, figures: ConcurrencyFigures) -> None:
    figures.operations += seen.operations
    figures.codes.update(seen.codes)
    leaks = [t for t in seen.texts if LEAK.search(t) or '"internal"' in t]
    leaks += [f"code {c}" for c in seen.codes if c == "worker_failed"]
    leaks += seen.pinned_deleted
    verdict = Verdict()
    store = check_store(home / "store-v2", verdict)
    present = {r["sha256"] for r in store.index.query("SELECT sha256 FROM blobs")}
    files = [d.hex for d, _p in store.files.iter_blobs()]
    store.close()
    if pinned not in present:
        verdict.lost.append("the pinned model is gone")
    dupes = [d for d, k in Counter(files).items() if k > 1]
    verdict.corrupted += [f"{d[:12]} has {files.count(d)} files" for d in dupes]
    figures.leaked += leaks
    figures.lost += len(verdict.lost)
    figures.corrupted += len(verdict.corrupted)
    found = leaks + verdict.lost + verdict.corrupted
    if found and not figures.example:
        figures.example = f"round {figures.rounds}: {found[0][:400]}"

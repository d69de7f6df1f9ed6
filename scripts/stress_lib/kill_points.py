"""`scripts/stress --only kills`: SIGKILLs by the hundred, cheaply, at five points —
a host taking COS writes, `webmodels import`, `webmodels pull` from a loopback HTTP
server (paced, with ``Range`` resume), `webmodels gc`, and a host migrating a store of
the first schema version. Each process is forked from this one (stress_lib/kill_loop.py:
a restart costs a fork, not an interpreter start) and killed at a random moment of its
work, learnt from the runs that ended before their kill.

The store is not re-checked after every kill: the next process's start is the
restart, and the full check (stress_lib/checks.py: integrity, every indexed blob
re-hashes, nothing unindexed or left in tmp/, and every write or import whose success
was answered still there) runs every `CHECK_EVERY` kills and after the last, with
cumulative assertions. gc and migration run in cycles on a fresh copy of a prepared
store: killed until one run completes (at most `CYCLE_KILLS` kills, then one unkilled
run), then checked; a migration's index is checked after every kill (old or newest
schema, never between).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import shutil
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stress_lib import crash_points
from stress_lib.checks import Verdict, check_store
from stress_lib.kill_loop import KILLED, HostPipe, cli_child, cos_write, fork_child, kill_at
from stress_lib.operations import onnx_model

CHECK_EVERY = 10  # kills between full checks of a store shared by the kills
CYCLE_KILLS = 4  # gc, migration: kills of one prepared store before an unkilled run


@dataclass
class KillFigures:
    point: str
    kills: int = 0
    completed: int = 0
    retransferred: int = 0
    checks: int = 0
    lost: int = 0
    corrupted: int = 0
    failed: int = 0  # runs that ended with an error of their own (no kill)
    orphaned: set[str] = field(default_factory=set)  # unindexed blobs a kill left
    seconds: float = 0.0
    example: str = ""

    def judge(self, verdict: Verdict) -> None:
        self.checks += 1
        self.lost += bool(verdict.lost)
        self.corrupted += bool(verdict.corrupted)
        if (verdict.lost or verdict.corrupted) and not self.example:
            self.example = f"after kill {self.kills}: {verdict.lost + verdict.corrupted}"


class Moments:
    """Kill moments spread over a run's length, as the runs that ended before their
    kill measured it (the first run of each point is not killed)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lengths: list[float] = []
        self.stretch = 1.1  # grows while every run is killed: the later steps get kills too

    def deadline(self, started: float) -> float:
        if not self.lengths:
            return started + 60.0  # the calibration run
        recent = sorted(self.lengths[-8:])
        return started + self.rng.uniform(0, recent[len(recent) // 2] * self.stretch)

    def ended(self, started: float, status: int) -> None:
        if status != KILLED:
            self.lengths.append(time.monotonic() - started)
            self.stretch = 1.1
        else:
            self.stretch = min(self.stretch * 1.2, 4.0)


def _model(folder: Path, n: int, weight_bytes: int) -> Path:
    path = folder / f"k{n}.onnx"
    if not path.exists():
        onnx_model(path, weight_bytes=weight_bytes, seed=1000 + n)
    return path


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check(
    root: Path, stored: set[str], figures: KillFigures, *, orphans: bool = False, **kw: object
) -> set[str]:
    """The full check of `root`; the hashes it holds. A blob file without its index row
    after the next start is corrupted (a kill between a publish's rename and its index
    COMMIT left one until the next start settled publishing markers); with `orphans`
    it is only counted in `figures.orphaned`."""
    verdict = Verdict()
    if not (root / "index.sqlite3").exists():
        verdict.lost += ["no store at all"] if stored else []
        figures.judge(verdict)
        return set()
    store = check_store(root, verdict, **kw)  # type: ignore[arg-type]
    present = {r["sha256"] for r in store.index.query("SELECT sha256 FROM blobs")}
    store.close()  # no connection may cross the next fork
    verdict.lost += [f"{d[:12]} answered as stored, missing" for d in stored - present]
    if orphans:
        left = [c for c in verdict.corrupted if c.startswith("unindexed blob ")]
        figures.orphaned |= {c.split()[-1] for c in left}
        verdict.corrupted = [c for c in verdict.corrupted if c not in left]
    figures.judge(verdict)
    return present


def _final(home: Path, stored: set[str], figures: KillFigures) -> None:
    """After the last kill: the full check, then `gc` (unkilled) must leave no blob
    file without its row and keep every stored model."""
    _check(home / "store-v2", stored, figures)
    if kill_at(cli_child(home, ["gc"]), time.monotonic() + 120) != 0:
        figures.judge(Verdict(corrupted=["gc failed after the kills"]))
    _check(home / "store-v2", stored, figures, orphans=False)


def kill_cos_writes(kills: int, weight_bytes: int, rng: random.Random, base: Path) -> KillFigures:
    figures, moments = KillFigures("COS write"), Moments(rng)
    home, stored, n = base / "cos", set[str](), 0
    home.mkdir()
    for _ in range(kills * 4):
        if figures.kills >= kills:
            break
        data = _model(base, n, weight_bytes).read_bytes()
        started = time.monotonic()
        host, sent = HostPipe(home, moments.deadline(started)), [0]
        try:
            done = cos_write(host, data, sent)
        except (TimeoutError, EOFError, OSError, KeyError):
            done = False
        status = host.finish()
        moments.ended(started, status)
        _count(figures, status, done)
        if done:
            stored.add(_hex(data))
            n += 1
        else:
            figures.retransferred += sent[0]  # sent again by the next round
        if status == KILLED and figures.kills % CHECK_EVERY == 0:
            _check(home / "store-v2", stored, figures)
    _final(home, stored, figures)
    return figures


def _count(figures: KillFigures, status: int, done: bool) -> None:
    figures.kills += status == KILLED
    figures.completed += done
    figures.failed += status not in (0, KILLED)


def kill_imports(kills: int, weight_bytes: int, rng: random.Random, base: Path) -> KillFigures:
    figures, moments = KillFigures("import"), Moments(rng)
    home, stored, n = base / "import", set[str](), 0
    home.mkdir()
    for _ in range(kills * 4):
        if figures.kills >= kills:
            break
        model = _model(base, n, weight_bytes)
        started = time.monotonic()
        status = kill_at(cli_child(home, ["import", str(model)]), moments.deadline(started))
        moments.ended(started, status)
        _count(figures, status, status == 0)
        if status == 0:
            stored.add(_hex(model.read_bytes()))
            n += 1
        else:
            figures.retransferred += model.stat().st_size  # read again by the next try
        if status == KILLED and figures.kills % CHECK_EVERY == 0:
            _check(home / "store-v2", stored, figures)
    _final(home, stored, figures)
    return figures


def _serve_models(files: dict[str, bytes]) -> tuple[str, int]:
    """A loopback HTTP server of `files` (strong ETag, ``Range``; each transfer paced
    over about 60 ms) in a forked process, so that this one stays single-threaded; its
    base URL and pid. ``GET /_sent`` answers the bytes it sent of each file."""
    server = crash_points.ModelServer(files)
    server.RequestHandlerClass = _CountingHandler

    def body() -> int:
        crash_points.TRANSFER_S = 0.06
        server.serve_forever()
        return 0

    pid = fork_child(body)
    server.server_close()  # this process's copy of the socket
    return server.base, pid


class _CountingHandler(crash_points._Handler):
    def do_GET(self) -> None:  # http.server's name
        if self.path != "/_sent":
            super().do_GET()
            return
        with self.server.lock:
            body = json.dumps(self.server.sent).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def kill_downloads(kills: int, weight_bytes: int, rng: random.Random, base: Path) -> KillFigures:
    figures, moments = KillFigures("download"), Moments(rng)
    home, stored = base / "download", set[str]()
    home.mkdir()
    models = [_model(base, 500 + n, weight_bytes) for n in range(kills * 2)]
    files = {m.name: m.read_bytes() for m in models}
    url, server = _serve_models(files)
    tried: list[str] = []
    try:
        for _ in range(kills * 4):
            name = next((m for m in files if _hex(files[m]) not in stored), None)
            if figures.kills >= kills or name is None:
                break
            tried += [name] if name not in tried else []
            argv = ["pull", f"{url}/{name}", "--sha256", _hex(files[name])]
            started = time.monotonic()
            status = kill_at(cli_child(home, argv), moments.deadline(started))
            moments.ended(started, status)
            _count(figures, status, status == 0)
            stored |= {_hex(files[name])} if status == 0 else set()
            if status == KILLED and figures.kills % CHECK_EVERY == 0:
                _check(home / "store-v2", stored, figures, resumable=True)
        for name in tried:  # the user's next try, unkilled: each must arrive
            argv = ["pull", f"{url}/{name}", "--sha256", _hex(files[name])]
            if kill_at(cli_child(home, argv), time.monotonic() + 120) == 0:
                stored.add(_hex(files[name]))
            else:
                figures.judge(Verdict(lost=[f"{name} cannot be pulled after the kills"]))
        _final(home, stored, figures)
        with urllib.request.urlopen(f"{url}/_sent", timeout=30) as reply:
            sent: dict[str, int] = json.load(reply)
        figures.retransferred = sum(sent[n] - len(files[n]) for n in tried)
    finally:
        os.kill(server, 9)
        os.waitpid(server, 0)
    return figures


def _cycles(
    figures: KillFigures,
    kills: int,
    rng: random.Random,
    fresh: Callable[[int], Path],
    run: Callable[[Path], int],
    after_kill: Callable[[Path], None],
    at_end: Callable[[Path], None],
) -> None:
    """Kill `run` on a `fresh` store until one run completes (after `CYCLE_KILLS`
    kills, one goes unkilled), then `at_end`; until `kills` kills."""
    moments, cycle = Moments(rng), 0
    while figures.kills < kills:
        home, in_cycle = fresh(cycle), 0
        while True:
            started = time.monotonic()
            unkilled = in_cycle >= CYCLE_KILLS or figures.kills >= kills
            deadline = started + 120 if unkilled else moments.deadline(started)
            status = kill_at(run(home), deadline)
            moments.ended(started, status)
            _count(figures, status, status == 0)
            if status != KILLED:
                break
            in_cycle += 1
            after_kill(home)
        at_end(home)
        cycle += 1


def kill_gc(kills: int, weight_bytes: int, rng: random.Random, base: Path) -> KillFigures:
    figures = KillFigures("gc")
    template = base / "gc-template"
    template.mkdir()
    models = [_model(base, 200 + n, weight_bytes) for n in range(12)]
    kept, loose, orphan = crash_points._prepare_gc(template, models, rng)

    def fresh(cycle: int) -> Path:
        home = base / f"gc{cycle}"
        shutil.copytree(template, home, symlinks=True)
        return home

    def at_end(home: Path) -> None:
        present = _check(home / "store-v2", kept, figures, known_orphans=frozenset({orphan}))
        if present & set(loose):
            figures.judge(Verdict(corrupted=["a gc that completed left unreferenced models"]))

    run = lambda home: cli_child(home, ["gc"])  # noqa: E731
    _cycles(figures, kills, rng, fresh, run, lambda home: None, at_end)
    return figures


def _schema(root: Path) -> int:
    db = sqlite3.connect(f"file:{root / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def kill_migrations(kills: int, weight_bytes: int, rng: random.Random, base: Path) -> KillFigures:
    from webmodels.store import index as index_module

    figures = KillFigures("migration")
    template = base / "mig-template"
    template.mkdir()
    digest = crash_points._old_store(template, _model(base, 300, weight_bytes))

    def fresh(cycle: int) -> Path:
        home = base / f"mig{cycle}"
        shutil.copytree(template, home, symlinks=True)
        return home

    def after_kill(home: Path) -> None:
        version = _schema(home / "store-v2")
        if version not in (1, index_module.SCHEMA_VERSION):
            figures.judge(Verdict(corrupted=[f"index left at schema {version}"]))

    def at_end(home: Path) -> None:
        if _schema(home / "store-v2") != index_module.SCHEMA_VERSION:
            figures.judge(Verdict(corrupted=["a host that started left the old schema"]))
        _check(home / "store-v2", {digest}, figures)

    # A host whose input is at its end starts (migrating the store), then exits.
    run = lambda home: cli_child(home, ["serve", "--trusted-stdio"])  # noqa: E731
    _cycles(figures, kills, rng, fresh, run, after_kill, at_end)
    return figures


POINTS = (kill_cos_writes, kill_imports, kill_downloads, kill_gc, kill_migrations)


# What the children import on their way (found with `sys.modules`), imported here once.
_WARM = (
    "webmodels.app",
    "webmodels.cli.main",
    "webmodels.cli.serve_cmd",
    "webmodels.cli.import_cmd",
    "webmodels.cli.manifest_import",
    "webmodels.cli.fetch_cmd",
    "webmodels.cli.store_cmd",
    "webmodels.fetch.session",
    "webmodels.fetch.guard",
    "webmodels.fetch.mirrors",
    "webmodels.methods.cos",
    "webmodels.methods.manage",
    "webmodels.methods.models",
    "webmodels.methods.sessions",
    "webmodels.runtime.background",
    "rich._emoji_codes",
)


def warm() -> None:
    """Import what the children run, once, here: a fork then starts it warm (a module
    another change renamed only makes the children slower)."""
    for name in _WARM:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def run_kills(kills_per_point: int, weight_bytes: int, *, seed: int = 17) -> list[KillFigures]:
    warm()
    rng = random.Random(seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="wm-kills-") as tmp:
        for point in POINTS:
            started = time.monotonic()
            base = Path(tmp) / point.__name__
            base.mkdir()
            row = point(kills_per_point, weight_bytes, rng, base)
            row.seconds = time.monotonic() - started
            rows.append(row)
    return rows

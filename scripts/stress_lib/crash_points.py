"""More crash points: SIGKILL of `webmodels pull` during a download from a real
loopback HTTP server (which resumes with ``Range`` + ``If-Range``), of `webmodels gc`
while it collects, and of a host starting on a store of the first schema version while
it migrates. Each kill is followed by the next start's full check (stress_lib/checks.py).

* downloads: a pull whose command succeeded must be in the store and re-hash; the
  bytes the server sent beyond one copy of each model count as re-transferred;
* gc: every referenced model survives; what gc removes is gone whole (no index row
  without its file, no file without its row but the orphan it was given);
* migration: the index on disk is at the old version or the newest, never between,
  and the next start opens it with the old model intact.
"""

from __future__ import annotations

import hashlib
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from stress_lib.checks import Verdict, check_store, next_start
from stress_lib.crashes import _env, _host, _kill
from stress_lib.operations import onnx_model
from webmodels.digest import Digest
from webmodels.store import index as index_module
from webmodels.store.store import Store

PACE = 32 * 1024  # bytes per write of the server; a short pause after each
# Start-up of a CLI or host process and its work; on a loaded machine start-up alone
# takes most of a second.
WINDOW_S = 3.0
MIGRATION_WINDOW_S = 1.2
KILLED = -signal.SIGKILL  # a child's exit status when SIGKILL ended it
TRANSFER_S = 0.6  # how long the server takes to send a whole model
_RANGE = re.compile(r"bytes=(\d+)-$")


@dataclass
class PointFigures:
    kind: str
    kills: int = 0
    completed: int = 0
    retransferred: int = 0
    lost: int = 0
    corrupted: int = 0
    seconds: float = 0.0
    midway: int = 0  # gc: kills inside its write transaction, with files set aside
    example: str = ""


class ModelServer(ThreadingHTTPServer):
    """Serves `files` on 127.0.0.1 with a strong ETag and ``Range``, counting bytes."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.sent: dict[str, int] = dict.fromkeys(files, 0)
        self.lock = threading.Lock()
        self.requested = threading.Event()  # set by every GET: a transfer has begun

    def add(self, name: str, data: bytes) -> None:
        with self.lock:
            self.files[name] = data
            self.sent[name] = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer

    def log_message(self, format: str, *args: object) -> None:  # stdlib's signature
        del format, args

    def do_GET(self) -> None:  # http.server's name
        name = self.path.lstrip("/")
        data = self.server.files.get(name)
        if data is None:
            self.send_error(404)
            return
        self.server.requested.set()
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        match = _RANGE.match(self.headers.get("Range", ""))
        start = int(match.group(1)) if match else 0
        if_range = self.headers.get("If-Range")
        if start >= len(data) or (if_range is not None and if_range != etag):
            start = 0
        self.send_response(206 if start else 200)
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        # Paced to take about TRANSFER_S in all, so a kill can land inside it.
        pause = TRANSFER_S * PACE / len(data)
        for offset in range(start, len(data), PACE):
            piece = data[offset : offset + PACE]
            try:
                self.wfile.write(piece)
            except OSError:
                return  # the client was killed
            with self.server.lock:
                self.server.sent[name] += len(piece)
            time.sleep(pause)


def _timed(argv: list[str], home: Path, rng: random.Random, window_s: float) -> int:
    """Run a CLI command, SIGKILL it at a random moment; its exit status."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", *argv],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    threading.Timer(rng.uniform(0, window_s), _kill, (proc,)).start()
    return proc.wait()


def _pull(argv: list[str], home: Path, rng: random.Random, server: ModelServer) -> int:
    """Run `webmodels pull`; SIGKILL it at a random moment of its transfer (or, one
    time in four, of its start-up, where it takes over the download a killed one left)."""
    server.requested.clear()
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", *argv],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    in_start_up = rng.random() < 0.25
    delay = rng.uniform(0, WINDOW_S if in_start_up else TRANSFER_S)

    def killer() -> None:
        if in_start_up or server.requested.wait(timeout=60):
            time.sleep(delay)
        _kill(proc)

    threading.Thread(target=killer, daemon=True).start()
    return proc.wait()


def _models(home: Path, count: int, weight_bytes: int) -> list[Path]:
    """Models m0..m<count-1> in `home`, made where not there yet."""
    paths = [home / f"m{i}.onnx" for i in range(count)]
    for seed, path in enumerate(paths):
        if not path.exists():
            onnx_model(path, weight_bytes=weight_bytes, seed=seed)
    return paths


def _hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _judge(figures: PointFigures, verdict: Verdict) -> None:
    figures.lost += bool(verdict.lost)
    figures.corrupted += bool(verdict.corrupted)
    if (verdict.lost or verdict.corrupted) and not figures.example:
        figures.example = f"after kill {figures.kills}: {verdict.lost + verdict.corrupted}"


def _stored_of(root: Path) -> set[str]:
    db = sqlite3.connect(f"file:{root / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        return {row[0] for row in db.execute("SELECT sha256 FROM blobs")}
    finally:
        db.close()


def _check_stored(root: Path, stored: set[str], figures: PointFigures, **kw: object) -> None:
    verdict = Verdict()
    store = check_store(root, verdict, **kw)  # type: ignore[arg-type]
    present = {r["sha256"] for r in store.index.query("SELECT sha256 FROM blobs")}
    store.close()
    verdict.lost += [f"{d[:12]} missing" for d in stored - present]
    _judge(figures, verdict)


def crash_downloads(kills: int, weight_bytes: int, window_s: float, seed: int) -> PointFigures:
    del window_s  # the kills are timed from the transfer's start (`_pull`)
    rng = random.Random(seed)
    figures = PointFigures("download")
    with tempfile.TemporaryDirectory(prefix="wm-crash-dl-") as tmp:
        home = Path(tmp)
        models = _models(home, 4, weight_bytes)
        digests = {m: _hex(m) for m in models}
        server = ModelServer({m.name: m.read_bytes() for m in models})
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stored: set[str] = set()
        try:
            for _ in range(kills * 3):  # a pull that ends before its kill is not one
                if figures.kills >= kills:
                    break
                model = next((m for m in models if digests[m] not in stored), None)
                if model is None:  # all arrived: a new model, so each pull transfers
                    model = _models(home, len(models) + 1, weight_bytes)[-1]
                    models.append(model)
                    digests[model] = _hex(model)
                    server.add(model.name, model.read_bytes())
                argv = ["pull", f"{server.base}/{model.name}", "--sha256", digests[model]]
                status = _pull(argv, home, rng, server)
                if status == 0:
                    stored.add(digests[model])
                    figures.completed += 1
                figures.kills += status == KILLED
                # A download in progress keeps its dl-*.partial for the resume.
                _check_stored(home / "store-v2", stored, figures, resumable=True)
            _finish_downloads(home, models, stored, server, figures)
        finally:
            server.shutdown()
        sizes = {m.name: m.stat().st_size for m in models}
        done = {m.name for m in models if digests[m] in stored}
        figures.retransferred = sum(
            sent - (sizes[name] if name in done else 0) for name, sent in server.sent.items()
        )
    return figures


def _finish_downloads(
    home: Path, models: list[Path], stored: set[str], server: ModelServer, figures: PointFigures
) -> None:
    """The user's next try, unkilled: every model a killed pull began must now
    arrive, and no download's partial file may outlive it."""
    for model in models:
        if _hex(model) in stored or not server.sent[model.name]:
            continue  # there, or never tried
        argv = ["pull", f"{server.base}/{model.name}", "--sha256", _hex(model)]
        proc = subprocess.run(
            [sys.executable, "-m", "webmodels", *argv], env=_env(home), capture_output=True
        )
        if proc.returncode == 0:
            stored.add(_hex(model))
        else:
            failed = Verdict(
                lost=[f"{model.name} cannot be pulled after the kills: {proc.stderr!r}"]
            )
            _judge(figures, failed)
    _check_stored(home / "store-v2", stored, figures)


def _prepare_gc(
    home: Path, models: list[Path], rng: random.Random
) -> tuple[set[str], list[str], str]:
    """A store holding kept models, unreferenced ones (gc's work: the more, the longer
    it runs), an orphan file and a dead writer's temp file; their digests (kept,
    unreferenced, orphan)."""
    store = Store(home / "store-v2")
    kept = {store.import_file(m).model.digest.hex for m in models[:2]}
    loose = [store.import_file(m).model.digest.hex for m in models[2:-1]]
    with store.index.write() as db:
        db.executemany("DELETE FROM refs WHERE sha256 = ?", [(d,) for d in loose])
    orphan = Digest(_hex(models[-1]))  # a publish whose index write was lost
    path = store.files.path_of(orphan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(models[-1].read_bytes())
    path.chmod(0o400)
    (store.files.tmp_dir / f"99999{rng.randrange(9999)}-dead.partial").write_bytes(b"dead")
    store.close()
    return kept, loose, orphan.hex


def _gc(home: Path, rng: random.Random, window_s: float) -> tuple[int, bool]:
    """Run `webmodels gc`; SIGKILL it at a random moment of its first `window_s`, or
    (one time in two) as soon as it has set its first file aside: inside its write
    transaction. (exit status, whether files were set aside when the kill came)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "webmodels", "gc"],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp_dir = home / "store-v2" / "tmp"
    targeted = rng.random() < 0.5
    delay = rng.uniform(0, window_s)
    inside = [False]

    def killer() -> None:
        if not targeted:
            time.sleep(delay)
        else:
            while proc.poll() is None and not any(tmp_dir.glob("*.aside")):
                time.sleep(0.0005)
        inside[0] = proc.poll() is None and any(tmp_dir.glob("*.aside"))
        _kill(proc)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    status = proc.wait()
    thread.join()
    return status, inside[0]


def crash_gc(kills: int, weight_bytes: int, window_s: float, seed: int) -> PointFigures:
    rng = random.Random(seed)
    figures = PointFigures("gc")
    with tempfile.TemporaryDirectory(prefix="wm-crash-gc-") as tmp:
        base = Path(tmp)
        models = _models(base, 12, weight_bytes // 8)
        for n in range(kills * 3):  # a gc that ends before its kill is not one
            if figures.kills >= kills:
                break
            home = base / f"round{n}"
            home.mkdir()
            kept, loose, orphan = _prepare_gc(home, models, rng)
            status, inside = _gc(home, rng, window_s)
            figures.completed += status == 0
            figures.kills += status == KILLED
            figures.midway += inside and status == KILLED
            _check_stored(home / "store-v2", kept, figures, known_orphans=frozenset({orphan}))
            if not status and _stored_of(home / "store-v2") & set(loose):
                _judge(figures, Verdict(corrupted=["a gc that completed left unreferenced models"]))
    return figures


def _old_store(home: Path, model: Path) -> str:
    """A store made by the first schema version, holding `model` as it would have
    (whole: that version had no segments, whatever WEBMODELS_STORE_SEGMENTS says)."""
    real = index_module.MIGRATIONS, index_module.SCHEMA_VERSION
    index_module.MIGRATIONS, index_module.SCHEMA_VERSION = real[0][:1], 1
    try:
        with next_start():
            store = Store(home / "store-v2", segments=False)
            store.import_file(model)
            store.close()
    finally:
        index_module.MIGRATIONS, index_module.SCHEMA_VERSION = real
    return _hex(model)


def _schema(root: Path) -> int:
    db = sqlite3.connect(f"file:{root / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def crash_migration(kills: int, weight_bytes: int, window_s: float, seed: int) -> PointFigures:
    del window_s  # a host start-up is shorter: MIGRATION_WINDOW_S
    rng = random.Random(seed)
    figures = PointFigures("migration")
    with tempfile.TemporaryDirectory(prefix="wm-crash-mig-") as tmp:
        base = Path(tmp)
        model = _models(base, 1, weight_bytes)[0]
        for n in range(kills):
            home = base / f"round{n}"
            home.mkdir()
            digest = _old_store(home, model)
            proc = _host(home)
            # A host's start-up takes about 0.5 s on a quiet machine, the migration a
            # few ms of it: the kills land before, during and after.
            threading.Timer(rng.uniform(0, MIGRATION_WINDOW_S), _kill, (proc,)).start()
            figures.kills += proc.wait() == KILLED  # a host runs until killed
            version = _schema(home / "store-v2")
            figures.completed += version == index_module.SCHEMA_VERSION
            verdict = Verdict()
            if version not in (1, index_module.SCHEMA_VERSION):
                verdict.corrupted.append(f"index left at schema {version}")
            _judge(figures, verdict)
            _check_stored(home / "store-v2", {digest}, figures)
    return figures


RUNS: dict[str, Callable[[int, int, float, int], PointFigures]] = {
    "download": crash_downloads,
    "gc": crash_gc,
    "migration": crash_migration,
}


def run_points(kills: int, weight_bytes: int, *, seed: int = 17) -> list[PointFigures]:
    """`kills` of each kind, each at a random moment of the first `WINDOW_S`."""
    rows = []
    for run in RUNS.values():
        started = time.monotonic()
        row = run(kills, weight_bytes, WINDOW_S, seed)
        row.seconds = time.monotonic() - started
        rows.append(row)
    return rows

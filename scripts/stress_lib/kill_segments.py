"""`scripts/stress --only segkills`: the cheap kill loop (stress_lib/kill_loop.py:
forked hosts and commands, SIGKILLed at a random moment of their work) through a store
that keeps files as segments (``WEBMODELS_STORE_SEGMENTS=1``), at six points: `import`
of an ONNX file that shares its weights' segment with a file already stored, a host's
COS write of those bytes, `pull` of them from a loopback HTTP server (paced, with
``Range`` resume; a killed pull's partial is kept for the next try), `rm` of files
whose segments another file shares, `gc` of unreferenced files (one sharing a segment)
and an orphan segment, and `store convert` of files stored whole.

Each point runs in cycles on a fresh copy of a prepared store: killed until one run
completes (after `CYCLE_KILLS` kills one goes unkilled). After every kill the store is
opened as a new process opens it (its start-up clean-up runs) and given the full check
of stress_lib/segment_checks.py (integrity, every indexed file rebuilds and re-hashes,
no named segment missing, counts equal recipes, no unindexed blob or temp file), and
every file that must survive the operation is still indexed. A segment a kill left
between its write and the index COMMIT is named by no recipe: the next `gc` removes it
(counted as orphaned, not lost). After the run that completes: its result (the
imported, written or pulled file there, the deleted or collected ones gone, every file
converted), then an unkilled `gc` and the check again with no unnamed segment and no
temp file allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from stress_lib.checks import Verdict
from stress_lib.injection import scratch_dir
from stress_lib.kill_loop import KILLED, HostPipe, cli_child, cos_write, kill_at
from stress_lib.kill_points import CYCLE_KILLS, KillFigures, Moments, _serve_models, warm
from stress_lib.operations import _model_bytes
from stress_lib.segment_checks import check_segmented
from webmodels.config import ENV_STORE_SEGMENTS

SEG = {ENV_STORE_SEGMENTS: "1"}
WHOLE = {ENV_STORE_SEGMENTS: "0"}
ROOT = "store-v2"
UNNAMED = "unreferenced segment "
TEMP = "temp file survives the next start: "


@dataclass
class Models:
    """m0 (the bystander, stored first), m1 (weights of its own) and variant (m0's
    weights in another graph: the two share the weights' segment)."""

    folder: Path
    digests: dict[str, str]
    url: str = ""  # the loopback server of their bytes

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.onnx"


def make_models(folder: Path, weight_bytes: int) -> Models:
    folder.mkdir(parents=True, exist_ok=True)
    variant = onnx.load_from_string(_model_bytes(weight_bytes, 0))
    variant.graph.name = "variant"
    data = {
        "m0": _model_bytes(weight_bytes, 0),
        "m1": _model_bytes(weight_bytes, 1),
        "variant": variant.SerializeToString(),
    }
    for name, body in data.items():
        (folder / f"{name}.onnx").write_bytes(body)
    return Models(folder, {n: hashlib.sha256(b).hexdigest() for n, b in data.items()})


def _must(home: Path, argv: list[str], env: dict[str, str] = SEG) -> None:
    status = kill_at(cli_child(home, argv, env), time.monotonic() + 120)
    if status != 0:
        raise RuntimeError(f"preparing the store: webmodels {' '.join(argv)} ended {status}")


def _present(home: Path) -> set[str]:
    db = sqlite3.connect(f"file:{home / ROOT / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT sha256 FROM blobs WHERE state = 'ok'")}
    finally:
        db.close()


def _doubled(home: Path) -> list[str]:
    """Files kept as segments whose whole file survives the next start too (a
    conversion killed after its commit leaves it for that start to remove)."""
    db = sqlite3.connect(f"file:{home / ROOT / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        named = [r[0] for r in db.execute("SELECT sha256 FROM recipes")]
    finally:
        db.close()
    blobs = home / ROOT / "blobs" / "sha256"
    return [
        f"whole file of {h[:12]} left beside its segments"
        for h in named
        if (blobs / h[:2] / h).exists()
    ]


def _whole_files(home: Path) -> set[str]:
    db = sqlite3.connect(f"file:{home / ROOT / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT sha256 FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM recipes)"
        )
        return {r[0] for r in rows}
    finally:
        db.close()


@dataclass(frozen=True)
class SegPoint:
    """An operation: `prepare` makes the store it runs on; `run` starts it (its exit
    status, whether it completed); `kept`: files every kill must leave; `after`: files
    the completed run leaves (the rest of `gone` is absent)."""

    name: str
    prepare: Callable[[Path, Models], None]
    run: Callable[[Path, Models, float], tuple[int, bool]]
    kept: tuple[str, ...]
    after: tuple[str, ...]
    gone: tuple[str, ...] = ()


def _prepare_bystander(home: Path, m: Models) -> None:
    _must(home, ["import", str(m.path("m0"))])


def _prepare_delete(home: Path, m: Models) -> None:
    _must(home, ["import", str(m.path("m0")), str(m.path("variant")), str(m.path("m1"))])


def _prepare_gc(home: Path, m: Models) -> None:
    _prepare_delete(home, m)
    db = sqlite3.connect(home / ROOT / "index.sqlite3")
    try:
        with db:
            for name in ("variant", "m1"):
                db.execute("DELETE FROM refs WHERE sha256 = ?", (m.digests[name],))
    finally:
        db.close()


def _prepare_convert(home: Path, m: Models) -> None:
    _must(home, ["import", str(m.path("m0"))])
    _must(home, ["import", str(m.path("m1")), str(m.path("variant"))], WHOLE)


def _cli(argv: Callable[[Models], list[str]]) -> Callable[[Path, Models, float], tuple[int, bool]]:
    def run(home: Path, m: Models, deadline: float) -> tuple[int, bool]:
        status = kill_at(cli_child(home, argv(m), SEG), deadline)
        return status, status == 0

    return run


def _pull(home: Path, m: Models, deadline: float) -> tuple[int, bool]:
    argv = ["pull", f"{m.url}/variant.onnx", "--sha256", m.digests["variant"]]
    status = kill_at(cli_child(home, argv, SEG), deadline)
    return status, status == 0


def _cos_write(home: Path, m: Models, deadline: float) -> tuple[int, bool]:
    host = HostPipe(home, deadline, SEG)
    try:
        done = cos_write(host, m.path("variant").read_bytes(), [0])
    except (TimeoutError, EOFError, OSError, KeyError):
        done = False
    return host.finish(), done


def _delete(home: Path, m: Models, deadline: float) -> tuple[int, bool]:
    """`rm` of those of variant and m1 a killed `rm` left (the user's next try)."""
    left = [m.digests[n] for n in ("variant", "m1") if m.digests[n] in _present(home)]
    if not left:
        return 0, True
    status = kill_at(cli_child(home, ["rm", *left], SEG), deadline)
    return status, status == 0


POINTS = (
    SegPoint(
        "import",
        _prepare_bystander,
        _cli(lambda m: ["import", str(m.path("variant"))]),
        ("m0",),
        ("m0", "variant"),
    ),
    SegPoint("COS write", _prepare_bystander, _cos_write, ("m0",), ("m0", "variant")),
    SegPoint("download", _prepare_bystander, _pull, ("m0",), ("m0", "variant")),
    SegPoint(
        "delete",
        _prepare_delete,
        _delete,
        ("m0",),
        ("m0",),
        ("variant", "m1"),
    ),
    SegPoint("gc", _prepare_gc, _cli(lambda m: ["gc"]), ("m0",), ("m0",), ("variant", "m1")),
    SegPoint(
        "convert",
        _prepare_convert,
        _cli(lambda m: ["store", "convert"]),
        ("m0", "m1", "variant"),
        ("m0", "m1", "variant"),
    ),
)


def _check(
    home: Path, m: Models, figures: KillFigures, names: tuple[str, ...], *, final: bool
) -> None:
    """The full check of `home` as the next start sees it; `names` must be indexed. A
    segment no recipe names is orphaned after a kill, corruption after the final gc."""
    verdict = Verdict()
    check_segmented(home / ROOT, verdict, before=frozenset())
    verdict.corrupted += _doubled(home)
    if not final:  # a killed pull's partial (kept for its resume) is no leftover yet
        left = [c for c in verdict.corrupted if c.startswith((UNNAMED, f"{TEMP}dl-"))]
        figures.orphaned |= {c.removeprefix(UNNAMED).split()[0] for c in left if UNNAMED in c}
        verdict.corrupted = [c for c in verdict.corrupted if c not in left]
    present = _present(home)
    verdict.lost += [
        f"{n} missing after kill {figures.kills}" for n in names if m.digests[n] not in present
    ]
    figures.judge(verdict)


def _finish(home: Path, m: Models, point: SegPoint, figures: KillFigures, *, killed: bool) -> None:
    """After the run that completed: its result, then (after kills in this store) an
    unkilled gc; no unnamed segment left."""
    present = _present(home)
    left = [n for n in point.gone if m.digests[n] in present]
    whole = _whole_files(home) if point.name == "convert" else set()
    if left or whole:
        figures.judge(
            Verdict(corrupted=[f"{point.name} completed, left {left} {len(whole)} whole"])
        )
    gc = killed and kill_at(cli_child(home, ["gc"], SEG), time.monotonic() + 120)
    if gc:
        figures.judge(Verdict(corrupted=["gc failed after the kills"]))
    _check(home, m, figures, point.after, final=True)


def kill_point(
    point: SegPoint, kills: int, m: Models, rng_moments: Moments, base: Path
) -> KillFigures:
    figures = KillFigures(f"segments {point.name}")
    template = base / "template"
    template.mkdir()
    point.prepare(template, m)
    cycle = 0
    while figures.kills < kills:
        home = base / f"c{cycle}"
        _copy(template, home)
        in_cycle = 0
        while True:
            started = time.monotonic()
            unkilled = in_cycle >= CYCLE_KILLS or figures.kills >= kills
            deadline = started + 120 if unkilled else rng_moments.deadline(started)
            status, done = point.run(home, m, deadline)
            rng_moments.ended(started, status)
            figures.kills += status == KILLED
            figures.completed += done
            figures.failed += status not in (0, KILLED)
            if status != KILLED:
                break
            in_cycle += 1
            _check(home, m, figures, point.kept, final=False)
        _finish(home, m, point, figures, killed=in_cycle > 0)
        shutil.rmtree(home)
        cycle += 1
    return figures


def _copy(template: Path, home: Path) -> None:
    shutil.copytree(template, home, symlinks=True)


def run_segment_kills(
    kills_per_point: int, weight_bytes: int, *, slow_kills: int | None = None, seed: int = 17
) -> list[KillFigures]:
    """`kills_per_point` kills of each point (`slow_kills` of a COS write and a pull,
    whose runs cost most: a host's start, a paced transfer)."""
    warm()
    rng = random.Random(seed)
    rows = []
    # RAM-backed where there is one: a SIGKILL loses nothing of the page cache, so
    # the kill tests the same thing there, and the 256 shard folders of each cycle's
    # store cost a disk's journal nothing.
    with tempfile.TemporaryDirectory(prefix="wm-segkills-", dir=scratch_dir()) as tmp:
        m = make_models(Path(tmp) / "models", weight_bytes)
        files = {f"{n}.onnx": m.path(n).read_bytes() for n in m.digests}
        m.url, server = _serve_models(files)
        try:
            rows = _points(m, Path(tmp), kills_per_point, slow_kills, rng)
            with urllib.request.urlopen(f"{m.url}/_sent", timeout=30) as reply:
                sent = json.load(reply)["variant.onnx"]
            for pulls in (r for r in rows if r.point.endswith("download")):
                pulls.retransferred = sent - pulls.completed * len(files["variant.onnx"])
        finally:
            os.kill(server, signal.SIGKILL)
            os.waitpid(server, 0)
    return rows


def _points(
    m: Models, tmp: Path, kills_per_point: int, slow_kills: int | None, rng: random.Random
) -> list[KillFigures]:
    rows = []
    for n, point in enumerate(POINTS):
        started = time.monotonic()
        base = tmp / f"p{n}"
        base.mkdir()
        slow = point.name in ("COS write", "download") and slow_kills
        kills = slow_kills if slow and slow_kills else kills_per_point
        row = kill_point(point, kills, m, Moments(rng), base)
        row.seconds = time.monotonic() - started
        rows.append(row)
    return rows

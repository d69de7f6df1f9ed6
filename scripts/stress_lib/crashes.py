"""Crash loop: a real host process (`webmodels serve`, spoken to over its pipes as a
browser's extension does) taking COS writes, and the CLI importing files, each killed
with SIGKILL at a random moment, then the store checked as the next start sees it.

A write whose commit was answered before the kill must be there and re-hash; one that
was not is sent again in the next round (its bytes count as re-transferred).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from stress_lib.checks import Verdict, check_store
from stress_lib.operations import onnx_model

HEADER = struct.Struct("=I")
PIECE = 64 * 1024


@dataclass
class CrashFigures:
    kills: int = 0
    committed: int = 0
    retransferred: int = 0
    lost: int = 0
    corrupted: int = 0
    example: str = ""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env["WEBMODELS_HOME"] = str(home)
    env["WEBMODELS_CONFIG"] = str(home / "no-config.toml")
    return env


def _host(home: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "webmodels", "serve", "--trusted-stdio"]
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(home),
    )


def _call(proc: subprocess.Popen[bytes], request_id: int, method: str, **params: object) -> dict:  # type: ignore[type-arg]
    assert proc.stdin is not None and proc.stdout is not None
    body = json.dumps({"id": request_id, "method": method, "params": params}).encode()
    proc.stdin.write(HEADER.pack(len(body)) + body)
    proc.stdin.flush()
    while True:
        header = proc.stdout.read(4)
        if len(header) < 4:
            raise EOFError("host gone")
        reply = json.loads(proc.stdout.read(HEADER.unpack(header)[0]))
        if reply.get("id") == request_id and "event" not in reply:
            return dict(reply)


def _cos_write(proc: subprocess.Popen[bytes], data: bytes, sent: list[int]) -> bool:
    """True when the commit was answered ok; `sent` counts the bytes sent."""
    digest = hashlib.sha256(data).hexdigest()
    reply = _call(proc, 1, "cos.write.begin", sha256=digest, size=len(data))
    upload_id = reply["result"]["upload_id"]
    for offset in range(0, len(data), PIECE):
        piece = data[offset : offset + PIECE]
        _call(
            proc,
            2,
            "cos.write.chunk",
            upload_id=upload_id,
            offset=offset,
            data=base64.b64encode(piece).decode(),
        )
        sent[0] += len(piece)
    return bool(_call(proc, 3, "cos.write.commit", upload_id=upload_id).get("ok"))


def _one_round(home: Path, model: Path, rng: random.Random, window_s: float) -> tuple[bool, int]:
    """Write or import `model`, SIGKILL at a random moment; (committed, bytes sent)."""
    data = model.read_bytes()
    sent = [0]
    if rng.random() < 0.5:
        proc = _host(home)
        threading.Timer(rng.uniform(0, window_s), _kill, (proc,)).start()
        try:
            done = _cos_write(proc, data, sent)
        except (EOFError, BrokenPipeError, OSError, ValueError, KeyError):
            done = False
        _kill(proc)
        return done, sent[0]
    argv = [sys.executable, "-m", "webmodels", "import", str(model)]
    proc = subprocess.Popen(
        argv, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    threading.Timer(rng.uniform(0, window_s), _kill, (proc,)).start()
    done = proc.wait() == 0
    return done, 0 if done else len(data)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def run_crashes(*, kills: int, weight_bytes: int, window_s: float, seed: int = 17) -> CrashFigures:
    rng = random.Random(seed)
    figures = CrashFigures()
    with tempfile.TemporaryDirectory(prefix="wm-crash-") as tmp:
        home = Path(tmp)
        models = [
            onnx_model(home / f"m{i}.onnx", weight_bytes=weight_bytes, seed=i) for i in range(8)
        ]
        stored: set[str] = set()
        pending = list(models)
        while figures.kills < kills:
            model = pending[0] if pending else rng.choice(models)
            done, sent = _one_round(home, model, rng, window_s)
            figures.kills += 1
            digest = hashlib.sha256(model.read_bytes()).hexdigest()
            if done:
                stored.add(digest)
                figures.committed += 1
                if pending and model == pending[0]:
                    pending.pop(0)
            else:
                figures.retransferred += sent
            _check(home, stored, figures)
    return figures


def _check(home: Path, stored: set[str], figures: CrashFigures) -> None:
    verdict = Verdict()
    roots = [home / "store-v2"] if (home / "store-v2").is_dir() else []
    for root in roots:
        store = check_store(root, verdict)
        present = {r["sha256"] for r in store.index.query("SELECT sha256 FROM blobs")}
        store.close()
        verdict.lost += [f"committed {d[:12]} missing" for d in stored - present]
    if not roots and stored:
        verdict.lost.append("no store at all")
    figures.lost += bool(verdict.lost)
    figures.corrupted += bool(verdict.corrupted)
    if (verdict.lost or verdict.corrupted) and not figures.example:
        figures.example = f"after kill {figures.kills}: {verdict.lost + verdict.corrupted}"

"""The hostile model corpus through ONNX Runtime (`scripts/stress --only corpus`):
every corpus file (stress_lib/corpus.py) a real host stored from a COS write is then
opened by a host session (`sessions.create`), as a page would have ONNX Runtime load
it. Each must load or be refused with a documented error code (errors.ERROR_CODES);
the runtime worker may die (a crash, its memory limit), but the host must answer
`hello` throughout (timed from a second thread), and right after each file a session
of a small valid model must be created and run, in a fresh worker where the old one
died.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from stress_lib.corpus import build_corpus
from stress_lib.corpus_host import HostClient, cos_write, ping
from stress_lib.operations import onnx_model
from webmodels.errors import ERROR_CODES

# The worker's limits for the run: memory (so a file that asks for more is refused,
# not the machine's), and no background compile (each session is the page's own).
CONFIG = "[sessions]\nworker_memory_bytes = 1073741824\nbackground_compile = false\n"


@dataclass
class SessionOutcome:
    name: str
    opened: str = ""  # "loaded", or the error code
    next_ok: bool = False  # a valid model's session right after it was created and ran
    hello_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _code(reply: dict) -> str:  # type: ignore[type-arg]
    if reply.get("ok"):
        return "loaded"
    error = reply.get("error") or {}
    return str(error.get("code", f"unclear: {reply!r:.200}"))


def _valid_session_works(host: HostClient, digest: str) -> bool:
    """A session of the valid model ``y = x + b`` is created and its run answers b."""
    created = host.call("sessions.create", sha256=digest)
    if not created.get("ok"):
        return False
    session = created["result"]["session_id"]
    x = {"type": "float32", "dims": [1, 4], "data": base64.b64encode(bytes(16)).decode()}
    ran = host.call("sessions.run", session_id=session, feeds={"x": x})
    host.call("sessions.release", session_id=session)
    if not ran.get("ok"):
        return False
    y = base64.b64decode(ran["result"]["outputs"]["y"]["data"])
    return list(struct.unpack("<4f", y)) == [0.0, 1.0, 2.0, 3.0]


def run_corpus_sessions(folder: Path) -> tuple[list[SessionOutcome], int]:
    """Each stored corpus file opened by a session; the outcomes and the host's peak
    RSS in KiB (the worker's memory is its own, bounded by `CONFIG`)."""
    home = folder / "session-home"
    home.mkdir(parents=True)
    (home / "no-config.toml").write_text(CONFIG)
    valid = onnx_model(folder / "valid.onnx", weight_bytes=1024, seed=7).read_bytes()
    paths = build_corpus(folder / "session-corpus")
    host = HostClient(home)
    outcomes = []
    try:
        if cos_write(host, valid) != "stored" or not _valid_session_works(
            host, hashlib.sha256(valid).hexdigest()
        ):
            raise RuntimeError("the valid model does not run before the corpus")
        for path in paths:
            data = path.read_bytes()
            if cos_write(host, data) != "stored":
                continue  # refused before any session could open it
            outcome = SessionOutcome(path.name)
            stop = threading.Event()
            pinger = threading.Thread(target=ping, args=(host, stop, outcome.hello_ms))
            pinger.start()
            try:
                reply = host.call("sessions.create", sha256=hashlib.sha256(data).hexdigest())
                outcome.opened = _code(reply)
                if reply.get("ok"):
                    host.call("sessions.release", session_id=reply["result"]["session_id"])
                outcome.next_ok = _valid_session_works(host, hashlib.sha256(valid).hexdigest())
            except EOFError:
                outcome.opened = "host gone"
            stop.set()
            pinger.join()
            _judge(outcome, host)
            outcomes.append(outcome)
        return outcomes, host.peak_rss_kib()
    finally:
        host.close()


def _judge(outcome: SessionOutcome, host: HostClient) -> None:
    if outcome.opened != "loaded" and outcome.opened not in ERROR_CODES:
        outcome.problems.append(f"session: {outcome.opened}")
    if not outcome.next_ok:
        outcome.problems.append("the next session of a valid model did not work")
    if host.proc.poll() is not None:
        outcome.problems.append(f"the host exited ({host.proc.returncode})")
    if not outcome.hello_ms or outcome.hello_ms[-1] == float("inf"):
        outcome.problems.append("hello got no answer")


def print_sessions(size: str) -> int:
    """`scripts/stress --only corpus`, second half: the table of sessions; the count
    of bad outcomes."""
    import tempfile
    import time

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wm-corpus-sessions-") as tmp:
        outcomes, rss_kib = run_corpus_sessions(Path(tmp))
    for o in outcomes:
        times = sorted(o.hello_ms)
        print(
            f"{o.name:40} session {o.opened:14} next valid session "
            f"{'works' if o.next_ok else 'FAILS':5}  hello x{len(times)}: max "
            f"{times[-1] if times else float('nan'):.1f} ms  " + "; ".join(o.problems)
        )
    every = sorted(t for o in outcomes for t in o.hello_ms)
    bad = sum(bool(o.problems) for o in outcomes)
    print(
        f"corpus sessions: {len(outcomes)} files opened, "
        f"{sum(o.opened == 'loaded' for o in outcomes)} loaded, {bad} bad; host peak RSS "
        f"{rss_kib / 1024:.0f} MiB; hello x{len(every)}: max {every[-1]:.1f} ms, "
        f"{sum(t > 50 for t in every)} over 50 ms; {time.monotonic() - started:.1f} s ({size})"
    )
    return bad

"""A real host (`webmodels serve --trusted-stdio`) spoken to over its pipes, for the
hostile corpus (stress_lib/corpus.py): one reader thread matches replies to requests,
so `hello` can be timed while a COS write is in flight."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HEADER = struct.Struct("=I")
PIECE = 256 * 1024


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_")}
    env["WEBMODELS_HOME"] = str(home)
    env["WEBMODELS_CONFIG"] = str(home / "no-config.toml")
    return env


class HostClient:
    """A real host over its pipes; replies matched to requests by id from one reader
    thread, so `hello` can be sent while a write is in flight."""

    def __init__(self, home: Path) -> None:
        argv = [sys.executable, "-m", "webmodels", "serve", "--trusted-stdio"]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env_for(home),
        )
        self.lock = threading.Lock()
        self.replies: dict[int, dict] = {}  # type: ignore[type-arg]
        self.arrived = threading.Condition()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while header := self.proc.stdout.read(4):
            reply = json.loads(self.proc.stdout.read(HEADER.unpack(header)[0]))
            if "event" in reply:
                continue
            with self.arrived:
                self.replies[int(reply.get("id", -1))] = reply
                self.arrived.notify_all()
        with self.arrived:
            self.replies[-2] = {}  # the host is gone
            self.arrived.notify_all()

    def call(self, method: str, **params: object) -> dict:  # type: ignore[type-arg]
        assert self.proc.stdin is not None
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
            body = json.dumps({"id": request_id, "method": method, "params": params}).encode()
            self.proc.stdin.write(HEADER.pack(len(body)) + body)
            self.proc.stdin.flush()
        with self.arrived:
            self.arrived.wait_for(lambda: request_id in self.replies or -2 in self.replies, 120)
            if request_id not in self.replies:
                raise EOFError("host gone")
            return self.replies.pop(request_id)

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
        )

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _code(reply: dict) -> str:  # type: ignore[type-arg]
    if reply.get("ok"):
        return "stored"
    error = reply.get("error") or {}
    return str(error.get("code", f"unclear: {reply!r:.200}"))


def cos_write(host: HostClient, data: bytes) -> str:
    """Begin, chunks, commit: "stored", or the first error code the host answered."""
    begin = host.call("cos.write.begin", sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    if not begin.get("ok"):
        return _code(begin)
    upload_id = begin["result"]["upload_id"]
    for offset in range(0, len(data), PIECE):
        piece = base64.b64encode(data[offset : offset + PIECE]).decode()
        reply = host.call("cos.write.chunk", upload_id=upload_id, offset=offset, data=piece)
        if not reply.get("ok"):
            return _code(reply)
    return _code(host.call("cos.write.commit", upload_id=upload_id))


def ping(host: HostClient, stop: threading.Event, times: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        if not host.call("hello").get("ok"):
            times.append(float("inf"))
            return
        times.append((time.perf_counter() - started) * 1000)
        stop.wait(0.002)

"""A real host subprocess (``python -m webmodels serve``) spoken to over its pipes."""

from __future__ import annotations

import json
import os
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HEADER = struct.Struct("=I")
MAX_OUTBOUND = 1024 * 1024


def frame(message: Any) -> bytes:
    body = json.dumps(message).encode()
    return HEADER.pack(len(body)) + body


# Suite-wide switches a test run passes on to the hosts and CLIs it starts (the others
# are dropped, so a developer's settings do not leak into a test).
PASSED_ON = ("WEBMODELS_STORE_SEGMENTS",)


def webmodels_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBMODELS_") or k in PASSED_ON}
    env["WEBMODELS_HOME"] = str(home)
    env["WEBMODELS_CONFIG"] = str(home / "no-config.toml")
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "webmodels", *args],
        env=webmodels_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"webmodels {args} failed ({result.returncode}):\n{result.stderr}")
    return result


class HostProcess:
    """Frames in, frames out; every frame read is checked against the 1 MiB limit."""

    def __init__(self, home: Path, *args: str, trusted: bool = True, **extra: str) -> None:
        self.home = home
        argv = [sys.executable, "-m", "webmodels", "serve"]
        if trusted:
            argv.append("--trusted-stdio")
        self.proc = subprocess.Popen(
            [*argv, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=webmodels_env(home, **extra),
        )
        self.frames: queue.Queue[Any] = queue.Queue()
        self.sizes: list[int] = []
        self.backlog: list[Any] = []  # messages `call` read past, for `recv`
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 1000

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            header = out.read(4)
            if len(header) < 4:
                self.frames.put(EOFError("host closed stdout"))
                return
            (length,) = HEADER.unpack(header)
            self.sizes.append(length)
            body = out.read(length)
            self.frames.put(json.loads(body))

    def logged(self) -> str:
        """The host's log: the whole text of errors pages get only as code and meaning."""
        return (self.home / "logs" / "host.log").read_text(encoding="utf-8", errors="replace")

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: Any) -> None:
        self.send_raw(frame(message))

    def recv(self, timeout: float = 30.0) -> Any:
        if self.backlog:
            return self.backlog.pop(0)
        item = self.frames.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        return item

    def call(self, method: str, params: dict[str, Any] | None = None, **fields: Any) -> Any:
        """Send a request and return its reply; other messages wait for `recv`."""
        self._next_id += 1
        request_id = self._next_id
        self.send({"id": request_id, "method": method, "params": params or {}, **fields})
        skipped = []
        while True:
            item = self.frames.get(timeout=60)
            if isinstance(item, Exception):
                raise item
            if item.get("id") == request_id and "event" not in item:
                self.backlog.extend(skipped)
                return item
            if item.get("id") != request_id:
                skipped.append(item)

    def result(self, method: str, params: dict[str, Any] | None = None, **fields: Any) -> Any:
        reply = self.call(method, params, **fields)
        assert reply["ok"], reply
        return reply["result"]

    def close(self, timeout: float = 30.0) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        assert all(size <= MAX_OUTBOUND for size in self.sizes), max(self.sizes)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
